"""The JSON Schemas of the contract, generated from the pydantic models and kept in
the repository under schemas/ (DESIGN.md, "The event on Kafka").

- schemas/events/<event_type>.v<version>.json: the whole record of that event type,
  with its payload's schema in the same document, so a consumer in any language
  validates a record against the one file named by its event_type and schema_version;
- schemas/events/envelope.json: any record, the payload left open;
- schemas/requests/request.json: any request (one of the services, by `service`);
- schemas/requests/<service>.json: the request of one service.

    python -m domain.schemas           # (re)write schemas/
    python -m domain.schemas --check   # exit 1 listing stale, missing or extra files
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

from domain.events import EVENT_TYPES, EventRecord, record_model
from domain.requests import REQUEST_MODELS, request_json_schema

DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"
# The folders this module owns: every .json file in them is generated.
OWNED: Final[tuple[str, ...]] = ("schemas/events", "schemas/requests")
REPOSITORY: Final = Path(__file__).resolve().parents[1]


def _document(schema: dict[str, Any], urn: str, title: str,
              description: str) -> dict[str, Any]:
    return {**schema, "$schema": DRAFT, "$id": urn, "title": title,
            "description": description}


def _event_documents() -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for t in EVENT_TYPES.values():
        schema = record_model(t.name).model_json_schema()
        labels = f" ({t.ar} — {t.en})" if t.ar and t.en else ""
        kinds = ", ".join((t.stream_kind, *t.also_in))
        docs[f"schemas/events/{t.name}.v{t.schema_version}.json"] = _document(
            schema, f"urn:sijil:events:{t.name}:v{t.schema_version}",
            f"{t.name} v{t.schema_version}",
            f"{t.description}{labels} Stream: {kinds}.")
    docs["schemas/events/envelope.json"] = _document(
        EventRecord.model_json_schema(), "urn:sijil:events:envelope",
        "Sijil event record",
        "Any event as Kafka carries it, its payload unchecked: validate the payload "
        "against schemas/events/<event_type>.v<schema_version>.json.")
    return docs


def _request_documents() -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {
        "schemas/requests/request.json": _document(
            request_json_schema(), "urn:sijil:requests:request", "Sijil request",
            "One e-service request, told apart by `service`: one line of the ingest's "
            "JSON Lines.")}
    for code, model in REQUEST_MODELS.items():
        docs[f"schemas/requests/{code}.json"] = _document(
            model.model_json_schema(), f"urn:sijil:requests:{code}", f"{code} request",
            f"A request for the service {code}.")
    return docs


def generate() -> dict[str, dict[str, Any]]:
    """Relative path -> JSON Schema document, for every file under schemas/ we own."""
    return {**_event_documents(), **_request_documents()}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _present(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for folder in OWNED
            for p in (root / folder).glob("*.json")}


def problems(root: Path = REPOSITORY) -> list[str]:
    """What differs between the files under root and generate(): stale, missing, extra."""
    expected = {path: render(doc) for path, doc in generate().items()}
    found: list[str] = []
    for path, text in sorted(expected.items()):
        file = root / path
        if not file.exists():
            found.append(f"missing: {path}")
        elif file.read_text(encoding="utf-8") != text:
            found.append(f"stale: {path}")
    found += [f"extra: {path}" for path in sorted(_present(root) - set(expected))]
    return found


def write(root: Path = REPOSITORY) -> list[Path]:
    """Write every schema under root (unchanged files are left alone) and delete the
    .json files in the owned folders that are no longer generated. Returns the paths of
    every generated file."""
    expected = {path: render(doc) for path, doc in generate().items()}
    for stale in _present(root) - set(expected):
        (root / stale).unlink()
    written: list[Path] = []
    for path, text in sorted(expected.items()):
        file = root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        if not file.exists() or file.read_text(encoding="utf-8") != text:
            file.write_text(text, encoding="utf-8")
        written.append(file)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m domain.schemas",
                                     description="Generate or check schemas/.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if schemas/ differs from the models")
    parser.add_argument("--root", type=Path, default=REPOSITORY,
                        help="the repository root (default: this checkout)")
    args = parser.parse_args(argv)
    if args.check:
        found = problems(args.root)
        for line in found:
            print(line)
        if found:
            print("run `python -m domain.schemas` to regenerate", file=sys.stderr)
            return 1
        print(f"schemas/ is up to date ({len(generate())} files)")
        return 0
    paths = write(args.root)
    print(f"wrote {len(paths)} schemas under {args.root / 'schemas'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
