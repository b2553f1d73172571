"""containerfile.py - reads a Containerfile into its instructions, one string each: continuation
lines joined, comment lines dropped. What the instructions must say is left to the scripts that
import it (containerfile-check.sh, build-stage.sh)."""


def instructions(path="Containerfile"):
    lines, cur = [], ""
    with open(path) as f:
        for raw in f:
            s = raw.rstrip("\n")
            if not cur and s.lstrip().startswith("#"):
                continue
            if s.endswith("\\"):
                cur += s[:-1] + " "
                continue
            cur += s
            if cur.strip():
                lines.append(cur.strip())
            cur = ""
    return lines
