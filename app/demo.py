"""Load the demo dataset that ships in demo/: twelve spoken prompts and four synthetic systems."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audio.storage import AudioStorage, StagedWrites
from app.config import PROJECT_ROOT, AudioSettings, get_settings
from app.datasets import service as datasets
from app.datasets.bundle import FolderBundle
from app.db.models import Prompt, SpeechModel
from app.speech_models import service as models
from app.speech_models.schemas import SpeechModelCreate

DEMO_DIR = PROJECT_ROOT / "demo"
DEMO_DATASET = "s2s-arena-demo"


def load_demo(session: Session, storage: AudioStorage, audio: AudioSettings) -> bool:
    """Import the demo prompts, systems and responses, once. Returns False if already there."""
    if session.scalar(select(Prompt.id).where(Prompt.dataset == DEMO_DATASET).limit(1)):
        return False
    with StagedWrites(storage) as staged:
        datasets.import_dataset(session, FolderBundle(DEMO_DIR / "dataset"), staged, audio,
                                dataset=DEMO_DATASET)
        for entry in json.loads((DEMO_DIR / "models.json").read_text()):
            slug = entry.pop("slug")
            model = session.scalars(
                select(SpeechModel).where(SpeechModel.name == entry["name"])
            ).one_or_none() or models.create(session, SpeechModelCreate(**entry), get_settings())
            datasets.import_responses(session, model, FolderBundle(DEMO_DIR / "responses" / slug),
                                      staged, audio)
        session.commit()
    return True
