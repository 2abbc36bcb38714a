"""One Messages API call with the anthropic SDK.

Env: BASE_URL, API_KEY, MODEL, PROMPT, MODE=text|stream|tool|tool_stream, MAX_TOKENS,
VERSION_HEADER (an anthropic-version header value to send instead of the SDK's).
Prints: {"id","model","role","text","blocks","stop_reason","usage","events"} where blocks are
{"type","text"} or {"type":"tool_use","name","input"}, and events (streams) the event types
in order.
"""

import anthropic

from common import emit, env, run

TOOLS = [
    {
        "name": "get_weather",
        "description": "The weather in a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


def blocks_of(message):
    out = []
    for b in message.content:
        if b.type == "text":
            out.append({"type": "text", "text": b.text})
        elif b.type == "tool_use":
            out.append({"type": "tool_use", "name": b.name, "input": b.input, "id": b.id})
        else:
            out.append({"type": b.type})
    return out


def main():
    version = env("VERSION_HEADER", "")
    client = anthropic.Anthropic(
        base_url=env("BASE_URL"),
        api_key=env("API_KEY", "sk-none"),
        max_retries=0,
        timeout=30.0,
        default_headers={"anthropic-version": version} if version else None,
    )
    mode = env("MODE", "text")
    kwargs = {
        "model": env("MODEL"),
        "max_tokens": int(env("MAX_TOKENS", "256")),
        "messages": [{"role": "user", "content": env("PROMPT", "Hello")}],
    }
    if mode.startswith("tool"):
        kwargs["tools"] = TOOLS
    events = []
    if mode in ("stream", "tool_stream"):
        with client.messages.stream(**kwargs) as stream:
            for event in stream:
                events.append(event.type)
            message = stream.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    blocks = blocks_of(message)
    emit(
        {
            "id": message.id,
            "model": message.model,
            "role": message.role,
            "text": "".join(b["text"] for b in blocks if b["type"] == "text"),
            "blocks": blocks,
            "stop_reason": message.stop_reason,
            "usage": {
                "input_tokens": message.usage.input_tokens,
                "output_tokens": message.usage.output_tokens,
            },
            "events": events,
        }
    )


run(main, (anthropic.APIError,))
