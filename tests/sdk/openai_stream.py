"""One streamed chat completion with the openai SDK.

Env: BASE_URL, API_KEY, MODEL, PROMPT, INCLUDE_USAGE=1 to pass
stream_options={"include_usage": True}, MAX_RETRIES (default 0).
Prints: {"content","chunks","content_chunks","usage_chunks","empty_choice_chunks","usage",
"finish_reason","model"}. An API error mid-stream ends with exit 3 and also reports the
content and chunk count seen before it.
"""

import openai

from common import emit, env, run

seen = {"content": "", "chunks": 0}


def main():
    client = openai.OpenAI(
        base_url=env("BASE_URL"),
        api_key=env("API_KEY", "sk-none"),
        max_retries=int(env("MAX_RETRIES", "0")),
        timeout=30.0,
    )
    kwargs = {
        "model": env("MODEL"),
        "messages": [{"role": "user", "content": env("PROMPT", "Hello")}],
        "stream": True,
    }
    if env("INCLUDE_USAGE", "0") == "1":
        kwargs["stream_options"] = {"include_usage": True}
    stream = client.chat.completions.create(**kwargs)
    usage_chunks = 0
    empty_choice_chunks = 0
    content_chunks = 0
    usage = None
    finish_reason = None
    model = None
    try:
        for chunk in stream:
            seen["chunks"] += 1
            model = chunk.model
            if chunk.usage is not None:
                usage_chunks += 1
                usage = chunk.usage.model_dump()
            if not chunk.choices:
                empty_choice_chunks += 1
                continue
            choice = chunk.choices[0]
            if choice.delta and choice.delta.content:
                content_chunks += 1
                seen["content"] += choice.delta.content
            if choice.finish_reason:
                finish_reason = choice.finish_reason
    except openai.APIError as e:
        e._aigw_extra = {"content_so_far": seen["content"], "chunks": seen["chunks"]}
        raise
    emit(
        {
            "content": seen["content"],
            "chunks": seen["chunks"],
            "content_chunks": content_chunks,
            "usage_chunks": usage_chunks,
            "empty_choice_chunks": empty_choice_chunks,
            "usage": usage,
            "finish_reason": finish_reason,
            "model": model,
        }
    )


run(main, (openai.APIError,))
