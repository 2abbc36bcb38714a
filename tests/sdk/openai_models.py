"""Lists models with the openai SDK, and retrieves RETRIEVE if set.

Env: BASE_URL, API_KEY, RETRIEVE.
Prints: {"ids","owners","retrieved"}.
"""

import openai

from common import emit, env, run


def main():
    client = openai.OpenAI(
        base_url=env("BASE_URL"), api_key=env("API_KEY", "sk-none"), max_retries=0, timeout=30.0
    )
    models = list(client.models.list())
    result = {"ids": [m.id for m in models], "owners": [m.owned_by for m in models], "retrieved": None}
    name = env("RETRIEVE", "")
    if name:
        result["retrieved"] = client.models.retrieve(name).id
    emit(result)


run(main, (openai.APIError,))
