"""One partial change of a CRM object, as the adapters publish it on the internal changes topic.

A change says: at ``occurred_at_ms`` (the CRM's clock), these contract fields of object
``object_id`` of kind ``deal``, ``call`` or ``visit`` took these values. Values are already
mapped to the contract (stage, rep_id, outcome, ...): mapping happens in the gateway, where an
unmapped value is refused before anything is published. ``change_id`` is derived from the CRM's
own identifiers of the change, so a redelivered webhook yields the same change and is merged once.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

ObjectKind = Literal["deal", "call", "visit"]
OBJECT_KINDS: tuple[str, ...] = ("deal", "call", "visit")


@dataclass(frozen=True)
class Change:
    """A partial update of one CRM object, in contract terms."""

    source: str  # the configured source's name (becomes the events' ``source``)
    kind: ObjectKind
    object_id: str  # the object's id as salespulse writes it (the source's id_prefix applied)
    change_id: str  # deterministic: the CRM's identifiers of this change
    occurred_at_ms: int  # when the change happened in the CRM, ms since the epoch
    fields: dict[str, Any] = field(default_factory=dict)  # contract field → value (None: cleared)

    @property
    def key(self) -> str:
        """The Kafka key and table key: every change of one object lands on one partition."""
        return record_key(self.source, self.kind, self.object_id)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "source": self.source,
                "kind": self.kind,
                "object_id": self.object_id,
                "change_id": self.change_id,
                "occurred_at_ms": self.occurred_at_ms,
                "fields": self.fields,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> "Change":
        """The change in ``raw``; raises ValueError for anything the gateway would not have written."""
        body = orjson.loads(raw)
        if not isinstance(body, dict) or body.get("kind") not in OBJECT_KINDS:
            raise ValueError("not a salespulse change record")
        occurred = body.get("occurred_at_ms")
        fields = body.get("fields")
        if not isinstance(occurred, int) or not isinstance(fields, dict):
            raise ValueError("a change record needs occurred_at_ms (int) and fields (object)")
        return cls(
            str(body["source"]),
            body["kind"],
            str(body["object_id"]),
            str(body["change_id"]),
            occurred,
            fields,
        )


def record_key(source: str, kind: str, object_id: str) -> str:
    return f"{source}|{kind}|{object_id}"
