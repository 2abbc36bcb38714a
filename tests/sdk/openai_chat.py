"""One chat completion with the openai SDK.

Env: BASE_URL, API_KEY, MODEL, PROMPT (or MESSAGES as JSON), EXTRA_BODY (JSON), RAW=1 to use
with_raw_response and report the response headers, REPEAT (calls, default 1: one result
each, in "calls"), MAX_RETRIES (default 0).
Prints: {"id","model","content","finish_reason","usage","tool_calls","headers","calls"}.
"""

import openai

from common import emit, env, env_json, run


def one(client, raw):
    kwargs = {
        "model": env("MODEL"),
        "messages": env_json("MESSAGES", [{"role": "user", "content": env("PROMPT", "Hello")}]),
    }
    extra = env_json("EXTRA_BODY", None)
    if extra:
        kwargs["extra_body"] = extra
    headers = {}
    if raw:
        response = client.chat.completions.with_raw_response.create(**kwargs)
        headers = {k.lower(): v for k, v in response.headers.items()}
        completion = response.parse()
    else:
        completion = client.chat.completions.create(**kwargs)
    choice = completion.choices[0]
    tool_calls = [
        {"name": t.function.name, "arguments": t.function.arguments}
        for t in (choice.message.tool_calls or [])
    ]
    return {
        "id": completion.id,
        "model": completion.model,
        "content": choice.message.content,
        "finish_reason": choice.finish_reason,
        "usage": completion.usage.model_dump() if completion.usage else None,
        "tool_calls": tool_calls,
        "headers": headers,
    }


def main():
    client = openai.OpenAI(
        base_url=env("BASE_URL"),
        api_key=env("API_KEY", "sk-none"),
        max_retries=int(env("MAX_RETRIES", "0")),
        timeout=30.0,
    )
    raw = env("RAW", "0") == "1"
    calls = [one(client, raw) for _ in range(int(env("REPEAT", "1")))]
    result = dict(calls[-1])
    result["calls"] = calls
    emit(result)


run(main, (openai.APIError,))
