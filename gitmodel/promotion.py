"""Promotions: a version moves into a stage only when the promotion gate passes.

`promotion_verdict` judges a candidate for STAGE against the version holding it now
(gitmodel.registry says who), with the release gate's pure judge (gitmodel.gate): same
policy, same rules, the noise rule's evidence handed in. `promote` and `demote` make
GTO's stage tags (`NAME#STAGE#N`, `NAME#STAGE!#N`); `judge_stage_tags` judges the stage
tags a `git tag`, a push or a server receives (gitmodel.hooks.doors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitmodel.git import run_git
from gitmodel.registry import (
    MAIN_LINE,
    NAME_RE,
    Holder,
    Registry,
    RegistryError,
    TagInfo,
    artifact_of_line,
    is_stage_tag,
    line_label,
    line_of_artifact,
    list_tags,
    parse_gto_tag,
)
from gitmodel.versions import is_release, parse_tag

if TYPE_CHECKING:
    from gitmodel.config import Config
    from gitmodel.noise_rule import NoiseEvidence
    from gitmodel.notes import PlumbingNotes
    from gitmodel.verdict import Verdict


# -- gating a promotion ------------------------------------------------------------------


def promotion_verdict(
    config: Config,
    registry: Registry,
    candidate: str,
    commit: str,
    line: str,
    stage: str,
    stage_tag: str,
    notes: Sequence[PlumbingNotes],
    baseline_notes: Sequence[PlumbingNotes] | None = None,
    noise: NoiseEvidence | None = None,
) -> Verdict:
    """Judge `candidate` (at commit) for STAGE against the version holding it now.

    The judge is the release gate's (`gate.judge`): same policy, same rules. An override
    for a promotion is recorded in the candidate's note under the stage tag's name, so a
    release's override never waives a promotion.
    """
    from gitmodel.gate import Baseline, Candidate, Release, judge
    from gitmodel.notes import NoteError, first_note
    from gitmodel.versions import ReleaseTag

    baseline_notes = baseline_notes or notes
    holder = registry.holder(line, stage)
    model = line or None
    label = f"{candidate} -> {stage}"
    note: dict[str, Any] | None = None
    note_error = None
    try:
        note = first_note(notes, commit)
    except NoteError as exc:
        note_error = exc.message
    previous = previous_note = None
    skipped = None
    if holder is not None and holder.commit != commit:
        try:
            previous_note = first_note(baseline_notes, holder.commit)
        except NoteError as exc:
            skipped = f"{holder.version} (holding {stage}) has a broken note: {exc.message}"
        if previous_note is not None:
            previous = ReleaseTag(parse_tag(holder.version), holder.commit, holder.event.date)
        elif skipped is None:
            skipped = f"{holder.version} (holding {stage}) has no metrics note"
    verdict = judge(
        config,
        Candidate(label, commit, note, model, stage_tag, note_error),
        Baseline(
            Release(previous, previous_note) if previous and previous_note is not None else None
        ),
        noise,
    )
    if previous is not None:
        verdict.notes.append(
            f"compared with {holder.version if holder else '?'}, which holds {stage}"
        )
    elif holder is not None and holder.commit == commit:
        verdict.notes.append(f"{candidate} already holds {stage}")
    elif skipped:
        verdict.notes.append(f"{skipped}: nothing to compare with")
    else:
        verdict.notes.append(f"no version holds {stage} yet: nothing to compare with")
    # The gate's words are a release's; say what this is.
    verdict.summary = verdict.summary.replace("; released anyway:", "; promoted anyway:")
    if verdict.passed and previous is None and not verdict.regressed:
        verdict.summary = f"PASS: {candidate} may hold {stage} (no version to compare with)"
    return verdict


# -- promote and demote ------------------------------------------------------------------


@dataclass
class StageChange:
    """What promote or demote did (tag None: refused, or nothing to do)."""

    action: str  # "promote" or "demote"
    line: str
    stage: str
    version: str  # the version promoted, or demoted
    commit: str
    tag: str | None = None
    previous: Holder | None = None  # who held the stage before
    holder: Holder | None = None  # who holds it after
    verdict: Verdict | None = None
    override: str | None = None
    already: bool = False

    def to_json(self) -> dict[str, Any]:
        def holder(h: Holder | None) -> dict[str, Any] | None:
            return {"version": h.version, "commit": h.commit, "tag": h.event.tag} if h else None

        return {
            "action": self.action,
            "line": self.line,
            "stage": self.stage,
            "version": self.version,
            "commit": self.commit,
            "tag": self.tag,
            "previous": holder(self.previous),
            "holder": holder(self.holder),
            "already": self.already,
            "override": self.override,
            "verdict": self.verdict.to_json() if self.verdict else None,
        }


def _check_stage(stage: str) -> None:
    if not NAME_RE.match(stage):
        raise RegistryError(
            f"{stage!r} is not a stage name GTO accepts (letters, digits, '-', '_', '/'; "
            "a letter or digit at both ends)"
        )


def _create_tag(root: Path, name: str, commit: str, message: str) -> bool:
    """Create annotated tag name; False when it exists already (a concurrent promotion)."""
    exists = run_git(
        ["rev-parse", "--verify", "--quiet", f"refs/tags/{name}"], cwd=root, check=False
    )
    if exists.returncode == 0:
        return False
    proc = run_git(
        ["tag", "-a", "--cleanup=whitespace", "-F", "-", name, commit],
        cwd=root,
        input=message,
        check=False,
    )
    if proc.returncode != 0:
        if "already exists" in (proc.stderr or ""):
            return False
        last = (proc.stderr or "").strip().splitlines()
        raise RegistryError(f"git tag {name} failed: {last[-1] if last else 'failed'}")
    return True


def _record_override(notes: Any, root: Path, commit: str, tag: str, reason: str) -> None:
    """The reason goes in the commit's note, where the push doors and the server read it."""
    from gitmodel.commit import record_override

    record_override(notes, root, commit, tag, reason, "git-model promote", kind="promotion")


def promote(
    root: Path,
    config: Config,
    notes: Any,
    ref: str,
    stage: str,
    message: str | None = None,
    allow_regression: str | None = None,
    noise: NoiseEvidence | None = None,
) -> StageChange:
    """Assign STAGE to release REF with a GTO tag, gated against the version holding it.

    Refused (tag None, verdict failed) when REF is worse and no reason is given; with
    allow_regression the reason is recorded in REF's note and in the tag's message.
    """
    from gitmodel.notes import PlumbingNotes
    from gitmodel.verdict import clean_text

    _check_stage(stage)
    if allow_regression is not None and not allow_regression.strip():
        raise RegistryError("--allow-regression needs a reason")
    if not is_release(ref, config.release_tags):
        raise RegistryError(
            f"{ref} is not a release tag (release.tags = {config.release_tags!r}): promote a "
            "release, e.g. v1.2.0 or NAME@v1.2.0"
        )
    for _attempt in range(5):
        registry = Registry.read(root, config.release_tags)
        release = registry.release(ref)
        if release is None or release.commit is None:
            raise RegistryError(f"no release tag {ref} (see `git model releases`)")
        if release.deregistered:
            raise RegistryError(f"{ref} is deprecated ({ref}! exists): it cannot hold a stage")
        line = release.tag.line
        artifact = artifact_of_line(line)
        change = StageChange("promote", line, stage, ref, release.commit)
        change.previous = registry.holder(line, stage)
        if change.previous is not None and change.previous.commit == release.commit:
            change.already, change.holder = True, change.previous
            return change
        tag = f"{artifact}#{stage}#{registry.next_counter(artifact)}"
        judged = (config, registry, ref, release.commit, line, stage, tag)
        verdict = promotion_verdict(*judged, [PlumbingNotes.from_ref(root)], noise=noise)
        if not verdict.passed:
            if allow_regression is None:
                change.verdict = verdict
                return change
            change.override = allow_regression.strip()
            _record_override(notes, root, release.commit, tag, change.override)
            # judged again with a fresh read of the notes, which now hold the override
            verdict = promotion_verdict(*judged, [PlumbingNotes.from_ref(root)], noise=noise)
        change.verdict = verdict
        lines = [
            message.strip() if message and message.strip() else f"Promote {ref} to {stage}",
            "",
        ]
        if change.override:
            lines += [f"Promoted despite the gate. Reason: {clean_text(change.override)}", ""]
        lines += ["Promotion gate (git model promote):", *verdict.lines()]
        if _create_tag(root, tag, release.commit, "\n".join(lines) + "\n"):
            change.tag = tag
            change.holder = Registry.read(root, config.release_tags).holder(line, stage)
            return change
    raise RegistryError(f"could not create a stage tag for {ref}: other promotions keep racing")


def demote(
    root: Path, config: Config, name: str, stage: str, message: str | None = None
) -> StageChange:
    """Unassign STAGE from the version of line NAME holding it (GTO's `NAME#STAGE!#N`)."""
    _check_stage(stage)
    line = line_of_artifact(name)
    if line and not NAME_RE.match(line):
        raise RegistryError(f"{name!r} is not a model name (use {MAIN_LINE} for the main line)")
    for _attempt in range(5):
        registry = Registry.read(root, config.release_tags)
        holder = registry.holder(line, stage)
        if holder is None:
            raise RegistryError(f"no version of {line_label(line)} holds {stage}")
        artifact = artifact_of_line(line)
        tag = f"{artifact}#{stage}!#{registry.next_counter(artifact)}"
        change = StageChange("demote", line, stage, holder.version, holder.commit, previous=holder)
        text = (
            message.strip()
            if message and message.strip()
            else f"Demote {holder.version} from {stage}"
        )
        if _create_tag(root, tag, holder.commit, text + "\n"):
            change.tag = tag
            change.holder = Registry.read(root, config.release_tags).holder(line, stage)
            return change
    raise RegistryError(f"could not create a stage tag for {name}: other changes keep racing")


def judge_stage_tags(
    root: Path,
    config: Config,
    pushed: Sequence[tuple[str, str]],
    notes: Sequence[PlumbingNotes],
    baseline_notes: Sequence[PlumbingNotes] | None = None,
    noise: NoiseEvidence | None = None,
) -> list[tuple[str, bool, str]]:
    """(name, passed, verdict text) for each pushed (object, tag name) that assigns a stage.

    The holder is read from the repository's tags without the ones being pushed (on a
    server, its tags before the push: a push cannot pick its own baseline; before a push,
    the local tags as they were before these), plus the stage tags of this push that come
    before the one judged (by N): two promotions pushed together are judged in turn.
    """
    import time

    from gitmodel.releases import peel_commit

    stage_tags = [(new, name) for new, name in pushed if is_stage_tag(name)]
    if not any(_assigns(name) for _, name in stage_tags):
        return []
    pushed_names = {name for _, name in stage_tags}
    existing = list_tags(root)
    by_name = {t.name: t for t in existing}
    base = [t for t in existing if t.name not in pushed_names]
    now = int(time.time())

    def order(item: tuple[str, str]) -> tuple[int, str]:
        gto = parse_gto_tag(item[1])
        return ((gto.counter or 0) if gto else 0, item[1])

    results = []
    earlier: list[TagInfo] = []
    for new, name in sorted(stage_tags, key=order):
        gto = parse_gto_tag(name)
        assert gto is not None and gto.stage is not None
        commit = peel_commit(root, new)
        if commit is None:
            results.append((name, False, f"promotion gate: {name} does not point at a commit\n"))
            continue
        if not _assigns(name):  # an unassignment is not gated, but later ones see it
            earlier.append(
                by_name.get(name) or TagInfo(name, commit, now + len(earlier), True, "", "")
            )
            continue
        registry = Registry(base + earlier, config.release_tags)
        line = line_of_artifact(gto.artifact)
        candidate = Registry._version_at(registry.line(line), commit)
        verdict = promotion_verdict(
            config,
            registry,
            candidate if candidate != commit else commit[:12],
            commit,
            line,
            gto.stage,
            name,
            notes,
            baseline_notes,
            noise,
        )
        results.append((name, verdict.passed, verdict.text()))
        known = by_name.get(name)
        earlier.append(known or TagInfo(name, commit, now + len(earlier), True, "", ""))
    return results


def _assigns(name: str) -> bool:
    gto = parse_gto_tag(name)
    return gto is not None and gto.action == "assign"
