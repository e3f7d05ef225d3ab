"""Quality of each industry taxonomy pack on real texts the project labelled (models/labels/packs/PACK.jsonl).

The packs are calibrated without these labels (on their own examples, at
load), so every text here is held out. The generic taxonomy
(models/taxonomy.yaml) runs on the same texts; its tags are translated into
the pack's ids with :data:`GENERIC_TO_PACK` (written with the packs, before
any scoring), and a generic tag with no counterpart counts as a wrong tag —
which is what an analyst of that industry would get from it.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from touchpoint.models.tagging_eval import multilabel_scores, predict_touchpoints, signals
from touchpoint.models.touchpoint_calibration import thresholds_from_examples
from touchpoint.models.touchpoints import OTHER, Taxonomy, TouchpointTagger

GENERIC_TO_PACK: dict[str, dict[str, str]] = {
    "airline": {"advertising": "advertising_offers", "website": "booking", "pricing": "fares_fees",
                "checkout": "booking", "payment": "booking", "food_quality": "inflight_service",
                "mobile_app": "mobile_app", "contact_center": "customer_service",
                "returns_refunds": "refunds_compensation", "billing": "fares_fees", "loyalty": "loyalty_miles"},
    "retail": {"advertising": "advertising", "website": "website", "product_info": "product_info", "pricing": "pricing",
               "checkout": "checkout_payment", "payment": "checkout_payment", "delivery": "delivery",
               "product_quality": "product_quality", "store_staff": "store_experience",
               "contact_center": "customer_service", "returns_refunds": "returns_refunds",
               "billing": "checkout_payment", "loyalty": "loyalty", "mobile_app": "website"},
    "telecom": {"advertising": "offers_advertising", "website": "account_app", "product_info": "device",
                "pricing": "plans_pricing", "payment": "billing", "onboarding": "activation_setup",
                "product_quality": "device", "mobile_app": "account_app", "store_staff": "retail_store",
                "contact_center": "customer_service", "billing": "billing", "loyalty": "contract_cancellation"},
    "banking": {"advertising": "marketing_offers", "website": "app_online_banking", "pricing": "fees_interest",
                "payment": "payments_transfers", "onboarding": "account_opening", "mobile_app": "app_online_banking",
                "store_staff": "branch_atm", "contact_center": "customer_service", "billing": "fees_interest",
                "loyalty": "loyalty_switching"},
    "saas": {"advertising": "marketing", "product_info": "features", "pricing": "pricing_plans",
             "checkout": "billing_subscription", "payment": "billing_subscription", "onboarding": "onboarding_docs",
             "product_quality": "reliability_performance", "contact_center": "customer_support",
             "returns_refunds": "billing_subscription", "billing": "billing_subscription", "loyalty": "loyalty_churn"},
    "hospitality": {"website": "reservations", "pricing": "price_value", "payment": "price_value",
                    "delivery": "delivery_takeout", "food_quality": "food_quality", "store_staff": "service_staff",
                    "billing": "price_value", "loyalty": "return_recommend"},
}  # fmt: skip


def pack_labels_dir() -> Path:
    return Path(str(resources.files("touchpoint.models").joinpath("labels", "packs")))


def load_pack_labels(pack: str) -> list[dict[str, Any]]:
    file = pack_labels_dir() / f"{pack}.jsonl"
    return [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]


def _translate(tags: list[str], mapping: dict[str, str]) -> list[str]:
    out = [OTHER if t == OTHER else mapping.get(t, f"generic:{t}") for t in tags]
    return list(dict.fromkeys(out))


def evaluate_pack(enricher: Any, pack: str) -> dict[str, Any]:
    """Micro-F1 of the pack (self-calibrated) and of the generic taxonomy on the pack's labelled texts."""
    rows = load_pack_labels(pack)
    taxonomy = Taxonomy.load(pack)
    tagger = TouchpointTagger(enricher.encoder, taxonomy, max_tags=enricher.touchpoints.max_tags)
    embedded = signals(enricher, [r["text"] for r in rows]).embeddings
    gold = [r["touchpoints"] for r in rows]
    pred = predict_touchpoints(tagger, embedded, tagger.min_similarity, tagger.margin)
    generic = enricher.touchpoints
    generic_pred = [_translate(p, GENERIC_TO_PACK[pack]) for p in
                    predict_touchpoints(generic, embedded, generic.min_similarity, generic.margin)]  # fmt: skip
    labels = (*taxonomy.ids, OTHER)
    wrong_generic = sorted({t for p in generic_pred for t in p if t.startswith("generic:")})
    raw = thresholds_from_examples(enricher.encoder, taxonomy, tagger.max_tags)  # without the real-text offset
    raw_pred = predict_touchpoints(tagger, embedded, raw.min_similarity, raw.margin) if raw else pred
    on_topic = [i for i, g in enumerate(gold) if g != [OTHER]]
    return {
        "pack": pack,
        "title": taxonomy.title,
        "n": len(rows),
        "on_topic": len(on_topic),
        "datasets": sorted({r["dataset"] for r in rows}),
        "pack_scores": multilabel_scores(gold, pred, labels),
        "pack_on_topic_micro_f1": multilabel_scores([gold[i] for i in on_topic], [pred[i] for i in on_topic],
                                                    labels)["micro_f1"] if on_topic else 0.0,  # fmt: skip
        "no_offset_micro_f1": multilabel_scores(gold, raw_pred, labels)["micro_f1"],
        "generic_micro_f1": multilabel_scores(gold, generic_pred, (*labels, *wrong_generic))["micro_f1"],
        "generic_on_topic_micro_f1": multilabel_scores([gold[i] for i in on_topic], [generic_pred[i] for i in on_topic],
                                                       (*labels, *wrong_generic))["micro_f1"] if on_topic else 0.0,
        "thresholds": f"floor {tagger.min_similarity:.2f}, margin {tagger.margin:.2f} ({tagger.threshold_source})",
    }


def evaluate_packs(enricher: Any) -> list[dict[str, Any]]:
    return [evaluate_pack(enricher, p.stem) for p in sorted(pack_labels_dir().glob("*.jsonl"))]
