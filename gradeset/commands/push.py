"""``gradeset push FOLDER REPO_ID``: publish a folder gradeset wrote as a Hugging Face dataset repo.

The folder's ``README.md`` (the dataset card gradeset writes) makes the Hub show and load it
as it loads locally. Hidden files, work folders, temporary files and reject files are not
uploaded: reject files keep raw input lines, which are not the user's to publish by default.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gradeset.errors import GradesetError

IGNORE = [".*", "**/.*", "**/.work/**", ".work/**", "**/*.tmp-*", "*.tmp-*", "*.rejects.jsonl", "**/*.rejects.jsonl"]


def register(sub) -> None:
    p = sub.add_parser("push", help="upload a dataset folder (with its card) to the Hugging Face Hub",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="folder to upload (a gradeset run or export folder)")
    p.add_argument("repo_id", help="dataset repository, e.g. user/my-dataset (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--include-rejects", action="store_true", help="upload *.rejects.jsonl files too")
    p.add_argument("--message", default=None, help="commit message")
    p.set_defaults(func=run)


def _why(exc: BaseException, endpoint: str) -> str:
    """One line for a failed upload: offline, not logged in, no access, or the Hub's own message."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    name = type(exc).__name__
    if name == "OfflineModeIsEnabled":
        return "HF_HUB_OFFLINE is set: unset it to upload"
    if status == 401:
        return f"not logged in at {endpoint} (token missing or rejected): run `hf auth login` or set HF_TOKEN"
    if status == 403:
        return f"your token may not write to this repository at {endpoint} (403): use a token with write access"
    if status is not None:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else name
        return f"the Hub at {endpoint} answered {status}: {first[:200]}"
    text = f"{name}: {exc}".lower()
    if any(w in text for w in ("connect", "resolve", "name or service", "timed out", "timeout", "network",
                               "unreachable", "refused")):
        return f"cannot reach {endpoint} (offline?): {str(exc).splitlines()[0][:160] if str(exc) else name}"
    return f"{name}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def run(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise GradesetError(f"{args.folder}: not a folder (push uploads a folder gradeset wrote)")
    if "/" not in args.repo_id or args.repo_id.count("/") != 1 or not all(args.repo_id.split("/")):
        raise GradesetError(f"{args.repo_id!r}: expected a repository id like user/name")
    if not (folder / "README.md").exists():
        print(f"note: {folder} has no README.md dataset card; `gradeset export` and `gradeset run` write one",
              file=sys.stderr)
    try:
        from huggingface_hub import HfApi, get_token
    except ImportError:
        raise GradesetError("gradeset push needs huggingface_hub: pip install 'gradeset[hf]'") from None
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    if not get_token():
        raise GradesetError("not logged in to the Hugging Face Hub: run `hf auth login` or set HF_TOKEN")
    api = HfApi(endpoint=endpoint)
    ignore = [p for p in IGNORE if args.include_rejects is False or "rejects" not in p]
    try:
        url = api.create_repo(args.repo_id, repo_type="dataset", private=args.private, exist_ok=True)
        api.upload_folder(repo_id=args.repo_id, folder_path=str(folder), repo_type="dataset",
                          ignore_patterns=ignore, commit_message=args.message or f"gradeset push {folder.name}")
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # every failure of the Hub client becomes one line, exit 2
        raise GradesetError(f"push to {args.repo_id} failed: {_why(exc, endpoint)}") from None
    print(f"pushed {folder} -> {url}", file=sys.stderr)
    return 0
