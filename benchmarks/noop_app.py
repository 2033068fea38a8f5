"""The physical limit of the serving stack: a FastAPI endpoint that reads the body and answers, under uvicorn."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

app = FastAPI()
ANSWER = b'{"score": 0.0}'


@app.post("/predict")
async def predict(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json")


@app.get("/health")
async def health() -> Response:
    return Response(b"{}", media_type="application/json")
