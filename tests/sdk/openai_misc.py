"""The other OpenAI operations with the openai SDK: legacy completions, responses, image
generation, speech and (multipart) transcriptions.

Env: BASE_URL, API_KEY, MODEL, OPS (comma-separated: completions, responses, images, speech,
transcriptions; default all), AUDIO_BYTES (size of the fake audio file, default 2048).
Prints: {OP: summary} for each op.
"""

import base64

import openai

from common import emit, env, run


def main():
    client = openai.OpenAI(
        base_url=env("BASE_URL"), api_key=env("API_KEY", "sk-none"), max_retries=0, timeout=30.0
    )
    model = env("MODEL")
    ops = env("OPS", "completions,responses,images,speech,transcriptions").split(",")
    out = {}
    if "completions" in ops:
        c = client.completions.create(model=model, prompt="Once upon a time")
        out["completions"] = {
            "text": c.choices[0].text,
            "finish_reason": c.choices[0].finish_reason,
            "usage": c.usage.model_dump() if c.usage else None,
        }
    if "responses" in ops:
        r = client.responses.create(model=model, input="Tell me a story")
        out["responses"] = {
            "text": r.output_text,
            "status": r.status,
            "usage": {"input_tokens": r.usage.input_tokens, "output_tokens": r.usage.output_tokens}
            if r.usage
            else None,
        }
    if "images" in ops:
        i = client.images.generate(model=model, prompt="a red square", n=2, response_format="b64_json")
        out["images"] = {
            "count": len(i.data),
            "png": [base64.b64decode(d.b64_json)[:8] == b"\x89PNG\r\n\x1a\n" for d in i.data],
        }
    if "speech" in ops:
        s = client.audio.speech.create(model=model, voice="alloy", input="Hello there")
        audio = s.content
        out["speech"] = {
            "bytes": len(audio),
            "riff": audio[:4] == b"RIFF",
            "content_type": s.response.headers.get("content-type"),
        }
    if "transcriptions" in ops:
        size = int(env("AUDIO_BYTES", "2048"))
        audio = b"RIFF" + bytes(range(256)) * (size // 256 + 1)
        t = client.audio.transcriptions.create(model=model, file=("clip.wav", audio[:size], "audio/wav"))
        out["transcriptions"] = {"text": t.text}
    emit(out)


run(main, (openai.APIError,))
