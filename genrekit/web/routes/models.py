"""``GET /api/models``: the models this server offers, and the bundles under ``--runs`` it cannot use."""

from __future__ import annotations

import os

from fastapi import APIRouter

from genrekit.errors import BundleError
from genrekit.web.schemas import BrokenModel, ModelCard, ModelInfo, ModelsResponse
from genrekit.web.state import ServerSettings, ServerState

models_router = APIRouter(prefix="/api", tags=["models"])


def _model_info(name: str, meta: dict, default: bool, names=None) -> ModelInfo:
    from genrekit.models.model_card import model_in_words

    card = meta.get("card") or {}
    fs = meta.get("feature_set") or {}
    return ModelInfo(
        name=name, default=default, kind=meta.get("kind", "classical"), labels=list(meta["labels"]),
        names={label: names.display(label) for label in meta["labels"]} if names is not None else {},
        window=meta.get("window"), hop=meta.get("hop"), sample_rate=int(fs.get("sample_rate", 22050)),
        feature_set=str(fs.get("name", "?")),
        # The card minus `command`, which may name folders on the server.
        card=ModelCard(**{k: card.get(k) for k in ("model", "data", "split", "created", "genrekit_version",
                                                        "limitations")},
                       summary=model_in_words(meta), figures=card.get("figures") or {}),
    )


@models_router.get("/models", response_model=ModelsResponse, summary="The models this server offers")
async def models(state: ServerState, settings: ServerSettings) -> ModelsResponse:
    out, broken = [], []
    for name in state.models.bundles:
        try:
            meta = state.models.meta(name)
            info = _model_info(name, meta, name == state.models.default.name, state.names)
        except BundleError as exc:  # listed as broken; every other model still works
            broken.append(BrokenModel(name=name, error=_relative(str(exc), settings.runs_dir)))
            continue
        # A bundle.json that read_meta let through but whose fields have the wrong shape (a
        # pydantic ValidationError is a ValueError): the file's fault, listed, not a 500.
        except (OSError, ValueError, KeyError, TypeError) as exc:
            broken.append(BrokenModel(name=name, error=f"unusable bundle.json ({type(exc).__name__})"))
            continue
        out.append(info)
    return ModelsResponse(models=out, broken=broken)


def _relative(text: str, runs_dir) -> str:
    """A message with the runs folder's path left out (it names folders on the server)."""
    if runs_dir is not None:
        text = text.replace(str(runs_dir) + os.sep, "")
    return text
