"""Embeddings with the openai SDK.

Env: BASE_URL, API_KEY, MODEL, INPUT (JSON: a string or a list of strings), DIMENSIONS.
Prints: {"count","dims","first","usage","model"}.
"""

import openai

from common import emit, env, env_json, run


def main():
    client = openai.OpenAI(
        base_url=env("BASE_URL"), api_key=env("API_KEY", "sk-none"), max_retries=0, timeout=30.0
    )
    kwargs = {"model": env("MODEL"), "input": env_json("INPUT", "hello")}
    dims = env("DIMENSIONS", "")
    if dims:
        kwargs["dimensions"] = int(dims)
    result = client.embeddings.create(**kwargs)
    emit(
        {
            "count": len(result.data),
            "dims": [len(d.embedding) for d in result.data],
            "indexes": [d.index for d in result.data],
            "first": result.data[0].embedding if result.data else None,
            "usage": result.usage.model_dump() if result.usage else None,
            "model": result.model,
        }
    )


run(main, (openai.APIError,))
