"""The page's JSON API, under /api: GET /api/health says the server is up, names its models and
says whether it collects drawings (--collect: the page then offers to);
POST /api/predict takes a picture (the page sends its canvas as a PNG) and answers with the 28x28
picture the network saw (`input`) and each model's reading (`readings`: `predict --json`'s fields,
the ten probabilities, and the model)."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from mnist_pipeline.web.service import Reader, read_body, reader

router = APIRouter()


@router.api_route("/health", methods=["GET", "HEAD"])
async def health(
    request: Request, service: Annotated[Reader, Depends(reader)]
) -> dict[str, object]:
    return {
        "status": "ok",
        "models": [model.describe() for model in service.models],
        "collecting": request.app.state.collection is not None,
    }


@router.post("/predict")
async def predict_upload(
    request: Request, service: Annotated[Reader, Depends(reader)]
) -> dict[str, object]:
    content_type = request.headers.get("content-type", "")
    if not content_type.split(";")[0].strip().lower().startswith("image/"):
        raise HTTPException(
            415, f"expected an image (Content-Type image/png), got {content_type or 'none'}"
        )
    body = await read_body(request, service.limits.max_bytes, "image")
    if not body:
        raise HTTPException(400, "empty request: send the drawing as a PNG image")
    return await service.in_a_worker(service.read_upload, body)
