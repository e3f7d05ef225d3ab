"""Industry taxonomy packs and brand-editable emotions: loading, validation messages, per-brand routing.

The YAML payloads below are hand-written in the format of models/taxonomy.yaml and
models/emotions.yaml (the project's own files); the texts are hand-written customer messages.
"""

from pathlib import Path

import numpy as np
import pytest

from touchpoint.models.datafile import DataFileError
from touchpoint.models.emotion import EmotionSet, EmotionTagger
from touchpoint.models.touchpoints import GENERIC, Taxonomy, TouchpointTagger, bundled_packs

PACKS = ("airline", "retail", "telecom", "banking", "saas", "hospitality")
GOOD = """\
name: mine
stages: [booking, support]
touchpoints:
  - id: delays
    stage: booking
    description: Late flights.
    examples: ["my flight is late", "delayed again", "three hours late"]
  - id: help
    stage: support
    description: Customer service.
    examples: ["nobody answers", "great agent", "on hold forever"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "brand.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_bundled_pack_loads_with_stages_descriptions_and_examples() -> None:
    assert set(PACKS) | {GENERIC} <= set(bundled_packs())
    for name in PACKS:
        taxonomy = Taxonomy.load(name)
        assert taxonomy.name == name and len(taxonomy.touchpoints) >= 10
        assert all(t.stage in taxonomy.stages and t.description and len(t.examples) >= 6 for t in taxonomy.touchpoints)


def test_a_brand_file_loads_by_path(tmp_path: Path) -> None:
    taxonomy = Taxonomy.load(write(tmp_path, GOOD))
    assert taxonomy.ids == ("delays", "help") and taxonomy.stage_of("help") == "support"


@pytest.mark.parametrize(
    ("broken", "line", "fix"),
    [
        (GOOD.replace("stage: support", "stage: travel"), "line 8", "use one of booking, support or add it to `stages`"),
        (GOOD.replace("id: help", "id: delays"), "line 8", "appears twice; rename or merge"),
        (GOOD.replace("examples: [\"nobody", "exmaples: [\"nobody"), "line 8", "unknown key 'exmaples'"),
        (GOOD.replace("id: help", "id: Help Desk"), "line 8", "must be lower_snake_case"),
        (GOOD.replace("    description: Late flights.\n", ""), "line 4", "needs `description`"),
        (GOOD.replace("stages: [booking, support]", "stages: [booking, support"), "line", "not valid YAML"),
    ],
)
def test_a_broken_pack_names_the_line_and_the_fix(tmp_path: Path, broken: str, line: str, fix: str) -> None:
    with pytest.raises(DataFileError) as error:
        Taxonomy.load(write(tmp_path, broken))
    assert str(tmp_path / "brand.yaml") in str(error.value) and line in str(error.value) and fix in str(error.value)


def test_an_unknown_pack_name_lists_the_packs() -> None:
    with pytest.raises(DataFileError, match="unknown taxonomy pack 'airlines': use one of generic, airline"):
        Taxonomy.load("airlines")


def test_a_pack_calibrates_itself_without_labels(enricher, tmp_path: Path) -> None:
    tagger = TouchpointTagger(enricher.encoder, Taxonomy.load("airline"), calibration={})
    assert "own examples" in tagger.threshold_source and 0.1 < tagger.min_similarity < 0.6
    [(delayed, _), (unrelated, _)] = tagger.tag(
        enricher.encoder.encode(["my flight has been delayed for four hours and nobody tells us why",
                                 "happy birthday to my little sister"]), [None, None])  # fmt: skip
    assert delayed[0] == "delays" and unrelated == ["other"]


def test_brands_get_their_own_pack(enricher) -> None:
    from touchpoint.models.enricher import Enricher, EnricherConfig

    routed = Enricher(EnricherConfig(taxonomy_packs={"acme_air": "airline", "bistro": "hospitality"}))
    text = "The flight was cancelled and I was stranded overnight at the airport"
    air, generic = routed.enrich([text, text], brands=["acme_air", "someone_else"])
    assert "cancellations" in air.touchpoints and air.journey_stage == "day_of_travel"
    assert "cancellations" not in generic.touchpoints  # negative control: the default taxonomy has no such id
    [food] = routed.enrich(["the steak was overcooked and the waiter ignored us"], brands=["bistro"])
    assert set(food.touchpoints) & {"food_quality", "service_staff"}


def test_score_only_hints_are_tagged_by_their_brands_pack(enricher) -> None:
    """Bare scores are tagged once per distinct (brand, hint): each row still gets what its own pack says."""
    from touchpoint.models.enricher import Enricher, EnricherConfig

    routed = Enricher(EnricherConfig(taxonomy_packs={"acme_air": "airline"}))
    brands = ["acme_air", "someone_else", None, "acme_air", "someone_else", "acme_air"]
    hints = ["cancellations", "cancellations", "checkout", None, "checkout", "cancellations"]
    results = routed.enrich([None] * len(hints), hints=hints, brands=brands)
    got = [(r.touchpoints, r.journey_stage) for r in results]
    zero = np.zeros((1, routed.encoder.dim), dtype=np.float32)
    alone = [routed.touchpoints_for(b).tag(zero, [h])[0] if h else ([], "unknown") for b, h in zip(brands, hints)]
    assert got == alone
    assert got[0] == (["cancellations"], "day_of_travel") and got[1] == (["other"], "unknown")  # the pack decides
    assert got[2][0] == ["checkout"] and got[3] == ([], "unknown")
    got[0][0].append("x")
    assert results[5].touchpoints == ["cancellations"]  # each record owns its list


def test_emotions_file_is_validated_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "emotions.yaml"
    path.write_text("emotions:\n  - name: anger\n    polarity: cross\n    phrases: [a, b, c]\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"line 2: emotion 'anger' has polarity 'cross'; use one of negative"):
        EmotionSet.load(path)


def test_every_emotion_fires(enricher) -> None:
    texts = {
        "anger": "This is outrageous, I am furious with your company!",
        "disappointment": "I'm really disappointed, it was not as good as I hoped.",
        "confusion": "I don't understand how this works, can someone explain why it does that?",
        "urgency": "Urgent: I need this fixed right now, please help asap!",
        "joy": "I love it, absolutely delighted, works great!",
        "gratitude": "Thank you so much for your help, I really appreciate it.",
    }
    results = enricher.enrich(list(texts.values()))
    for (emotion, _), result in zip(texts.items(), results):
        assert emotion in result.emotions, (emotion, result.emotions)


def test_no_joy_on_a_complaint(enricher) -> None:
    [result] = enricher.enrich(["My bag is lost, the flight was cancelled and nobody answers the phone."])
    assert "joy" not in result.emotions


def test_a_brand_added_emotion_fires_without_labels(enricher, tmp_path: Path) -> None:
    path = tmp_path / "emotions.yaml"
    bundled = (Path(__file__).parents[2] / "models" / "emotions.yaml").read_text(encoding="utf-8")
    path.write_text(bundled + "  - name: trust\n    polarity: positive\n    phrases:\n"
                    '      - "I trust you with my money"\n      - "you always keep your promises"\n'
                    '      - "I feel safe with this bank"\n      - "reliable and honest people"\n', encoding="utf-8")  # fmt: skip
    tagger = EmotionTagger(enricher.encoder, path=path)
    assert "from phrases: trust" in tagger.threshold_source
    scores = tagger.similarities(enricher.encoder.encode(["I feel safe keeping my savings with you, you keep promises"]))
    assert scores[0, tagger.names.index("trust")] >= tagger.thresholds[tagger.names.index("trust")]


def test_a_brand_that_labels_calibrates_its_pack(enricher, tmp_path: Path) -> None:
    """`touchpoint train tagging --labels FILE --taxonomy airline`: stored under the pack's fingerprint, then used."""
    import json

    from touchpoint.models.tagging_eval import add_brand_calibration

    labels = tmp_path / "labels.jsonl"  # hand-written messages a brand might label
    rows = [("my flight is delayed again, four hours now", ["delays"]), ("they lost my suitcase", ["baggage"]),
            ("flight cancelled and no rebooking offered", ["cancellations"]), ("lovely crew on board", ["crew"]),
            ("happy new year everyone", ["other"]), ("the seat had no legroom", ["seats"])]  # fmt: skip
    labels.write_text("".join(json.dumps({"text": t, "touchpoints": g}) + "\n" for t, g in rows), encoding="utf-8")
    out = tmp_path / "tagging.json"
    out.write_text("{}", encoding="utf-8")
    path, entry = add_brand_calibration(enricher, "airline", labels, out)
    assert str(labels) in entry["calibrated_on"]
    stored = json.loads(path.read_text())
    tagger = TouchpointTagger(enricher.encoder, Taxonomy.load("airline"), calibration=stored)
    assert tagger.threshold_source == entry["calibrated_on"] and tagger.min_similarity == entry["min_similarity"]
    labels.write_text(json.dumps({"text": "x", "touchpoints": ["delivery"]}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="touchpoint 'delivery' is not in airline; use its ids or `other`"):
        add_brand_calibration(enricher, "airline", labels, out)
