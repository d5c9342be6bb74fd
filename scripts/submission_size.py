"""What the commits since BASE (and the uncommitted changes) add to the repository, against the limits one
submission of this workplace must keep: 256 MiB of diffs, counted as text, and 512 MiB packed.

    python scripts/submission_size.py BASE      # BASE: the commit the session started from

Run it before committing trained weights. A submission over either limit is refused whole: every commit in
it is lost, trained models included (a GPU session's three retrained float32 models were).

A commit's diff is counted as git writes it with --binary: a changed binary file costs its old and its new
bytes, compressed and base85-encoded (about 1.2 times each). So replacing a zoo entry costs about 1.2 times
its old plus its new model.keras: `python scripts/submission_size.py 40b317f~1` lists 216 MiB for 1a28938,
which replaced resnet50v2's 95 MB float32 file with another.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

MIB = 1 << 20
DIFF_LIMIT_MIB = 256
PACK_LIMIT_MIB = 512


def git(*args: str, data: bytes | None = None, check: bool = True) -> bytes:
    return subprocess.run(["git", *args], input=data, capture_output=True, check=check).stdout


def commit_diffs(base: str) -> list[tuple[str, str, int]]:
    """(commit, subject, bytes of its diff as text) for each commit after ``base``, oldest first."""
    commits = git("rev-list", "--reverse", f"{base}..HEAD").decode().split()
    return [(c, git("log", "-1", "--format=%s", c).decode().strip(),
             len(git("show", "--binary", "--format=", "--no-color", c))) for c in commits]


def uncommitted_diff() -> int:
    """Bytes of the diff that committing the working tree as it is (untracked files included) would add."""
    untracked = git("ls-files", "--others", "--exclude-standard", "-z").split(b"\0")
    size = len(git("diff", "--binary", "--no-color", "HEAD"))
    for path in filter(None, untracked):
        size += len(git("diff", "--binary", "--no-color", "--no-index", "/dev/null", path.decode(), check=False))
    return size


def packed_size(base: str) -> int:
    """Bytes of the objects new since ``base``, packed as git sends them."""
    return len(git("pack-objects", "--stdout", "--revs", data=f"HEAD\n^{base}\n".encode()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base", help="the commit the submission starts after (the session's first HEAD)")
    p.add_argument("--diff-limit-mib", type=float, default=DIFF_LIMIT_MIB, help="limit on the diffs (MiB)")
    p.add_argument("--pack-limit-mib", type=float, default=PACK_LIMIT_MIB, help="limit on the pack (MiB)")
    args = p.parse_args(argv)

    rows = commit_diffs(args.base)
    for commit, subject, size in rows:
        print(f"{size / MIB:9.1f} MiB  {commit[:10]}  {subject[:70]}")
    pending = uncommitted_diff()
    if pending:
        print(f"{pending / MIB:9.1f} MiB  (uncommitted changes, if committed as they are)")
    diffs = sum(size for *_, size in rows) + pending
    packed = packed_size(args.base)
    print(f"diffs {diffs / MIB:.1f} of {args.diff_limit_mib:g} MiB; packed {packed / MIB:.1f} of "
          f"{args.pack_limit_mib:g} MiB (committed changes only)")
    over = [what for what, size, limit in (("diffs", diffs, args.diff_limit_mib), ("pack", packed, args.pack_limit_mib))
            if size > limit * MIB]
    if over:
        print(f"Over the limit ({', '.join(over)}): the submission would be refused whole. Ship fewer model files "
              "in this session (each replaced entry costs its old and its new weights).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
