#!/usr/bin/python3
"""Turn the raw KJV dump and fortune files into the tandem-tiny training corpus.

Run by prepare_data.sh (Debian's /usr/bin/python3 with python3-jinja2; no other
dependency). Writes, under --out:
  train.jsonl       plain-text training documents  {"id", "source", "text"}
  heldout.jsonl     plain-text held-out documents (2 % of all documents, by document)
  chat_train.jsonl  chat-formatted documents rendered with the GLM-4.5 chat template
                    from *training* documents only, so `tandem serve` answers in turns
                    and stops with <|user|>
  manifest.json     sources, versions, licences, counts and sha256 of every file

Everything is deterministic: the same inputs give byte-identical outputs.
"""

import argparse
import hashlib
import json
import os
import random
import re
import sys

import jinja2

kSeed = 20251128
kHeldoutFraction = 0.02

# Fortune files that are kept. The Debian package ships them under the BSD licence
# of /usr/share/doc/fortunes/copyright. Left out: files that are mostly verbatim
# excerpts of identifiable copyrighted works (startrek, zippy, pratchett, tao =
# "The Tao of Programming", songs-poems = song lyrics, humorists = stand-up
# routines), chat logs and code (knghtbrd, debian, linux, perl), pictures
# (ascii-art), non-English text (translate-me) and stereotype jokes (ethnic,
# men-women).
kFortuneFiles = [
    "art", "computers", "cookie", "definitions", "disclaimer", "drugs", "education",
    "food", "fortunes", "goedel", "kids", "law", "linuxcookie", "literature", "love",
    "magic", "medicine", "miscellaneous", "news", "paradoxum", "people", "pets",
    "platitudes", "politics", "riddles", "science", "sports", "wisdom", "work",
]

# Abbreviations printed by the `bible` program -> book names used in chat prompts.
kBooks = {
    "Ge": "Genesis", "Exo": "Exodus", "Lev": "Leviticus", "Num": "Numbers",
    "Deu": "Deuteronomy", "Josh": "Joshua", "Jdgs": "Judges", "Ruth": "Ruth",
    "1Sm": "1 Samuel", "2Sm": "2 Samuel", "1Ki": "1 Kings", "2Ki": "2 Kings",
    "1Chr": "1 Chronicles", "2Chr": "2 Chronicles", "Ezra": "Ezra", "Neh": "Nehemiah",
    "Est": "Esther", "Job": "Job", "Psa": "Psalms", "Prv": "Proverbs",
    "Eccl": "Ecclesiastes", "SSol": "Song of Solomon", "Isa": "Isaiah",
    "Jer": "Jeremiah", "Lam": "Lamentations", "Eze": "Ezekiel", "Dan": "Daniel",
    "Hos": "Hosea", "Joel": "Joel", "Amos": "Amos", "Obad": "Obadiah", "Jonah": "Jonah",
    "Mic": "Micah", "Nahum": "Nahum", "Hab": "Habakkuk", "Zep": "Zephaniah",
    "Hag": "Haggai", "Zec": "Zechariah", "Mal": "Malachi", "Mat": "Matthew",
    "Mark": "Mark", "Luke": "Luke", "John": "John", "Acts": "Acts", "Rom": "Romans",
    "1Cor": "1 Corinthians", "2Cor": "2 Corinthians", "Gal": "Galatians",
    "Eph": "Ephesians", "Phi": "Philippians", "Col": "Colossians",
    "1Th": "1 Thessalonians", "2Th": "2 Thessalonians", "1Tim": "1 Timothy",
    "2Tim": "2 Timothy", "Titus": "Titus", "Phmn": "Philemon", "Heb": "Hebrews",
    "Jas": "James", "1Pet": "1 Peter", "2Pet": "2 Peter", "1Jn": "1 John",
    "2Jn": "2 John", "3Jn": "3 John", "Jude": "Jude", "Rev": "Revelation",
}

kVerseLine = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")
kDialogueStart = re.compile(r"^(--|Q:|A:|[A-Z][A-Za-z .'-]{0,30}:\s)")


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_kjv(path):
    """One document per chapter; verse numbers dropped, verses joined into prose."""
    chapters = {}
    order = []
    with open(path, encoding="ascii") as f:
        for line_no, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            m = kVerseLine.match(line)
            if not m:
                sys.exit(f"build_corpus: {path}:{line_no}: expected 'Book C:V text', got {line[:60]!r}")
            book, chapter, text = m.group(1), int(m.group(2)), m.group(4).strip()
            if book not in kBooks:
                sys.exit(f"build_corpus: {path}:{line_no}: unknown book abbreviation {book!r}")
            key = (book, chapter)
            if key not in chapters:
                chapters[key] = []
                order.append(key)
            chapters[key].append(text)
    docs = []
    for book, chapter in order:
        verses = chapters[(book, chapter)]
        docs.append({
            "id": f"kjv/{book}/{chapter}",
            "source": "kjv",
            "book": kBooks[book],
            "chapter": chapter,
            "verses": verses,
            "text": " ".join(verses),
        })
    return docs


def clean_fortune(raw):
    """Strips overstrike, joins hard-wrapped lines, keeps dialogue and attribution lines."""
    text = raw
    while "\b" in text:
        text = re.sub(r"[^\n]\x08", "", text, count=0)
        text = text.replace("\b", "")
    text = text.replace("\t", " ")
    paragraphs = []
    current = []
    for line in text.split("\n"):
        stripped = " ".join(line.split())
        if not stripped:
            if current:
                paragraphs.append(current)
                current = []
            continue
        if current and kDialogueStart.match(stripped):
            paragraphs.append(current)
            current = []
        current.append(stripped)
    if current:
        paragraphs.append(current)
    return "\n".join(" ".join(p) for p in paragraphs).strip()


def is_prose(text):
    if len(text) < 20 or len(text) > 2000:
        return False
    letters = sum(c.isalpha() for c in text)
    return letters / len(text) >= 0.6


def read_fortunes(directory):
    docs = []
    for name in kFortuneFiles:
        path = os.path.join(directory, name)
        with open(path, "rb") as f:
            data = f.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        for index, raw in enumerate(re.split(r"\n%\n", "\n" + text + "\n")):
            cleaned = clean_fortune(raw)
            if is_prose(cleaned):
                docs.append({"id": f"fortunes/{name}/{index}", "source": f"fortunes/{name}",
                             "text": cleaned})
    # The same cookie appears in several files; keep its first occurrence only.
    seen = set()
    unique = []
    for doc in docs:
        if doc["text"] not in seen:
            seen.add(doc["text"])
            unique.append(doc)
    return unique


kFortuneRequests = [
    "Tell me a fortune.", "Give me a quote.", "Say something wise.", "Tell me something.",
    "Do you have a saying for me?", "Share a fortune cookie.", "Cheer me up.",
    "What does my fortune say?",
]
kTopicRequests = ["Tell me something about {topic}.", "Give me a quote about {topic}.",
                  "Say something about {topic}."]
kTopics = {
    "art": "art", "computers": "computers", "drugs": "drinking", "education": "school",
    "food": "food", "kids": "children", "law": "the law", "literature": "books",
    "love": "love", "medicine": "doctors", "news": "the news", "people": "people",
    "pets": "pets", "politics": "politics", "science": "science", "sports": "sports",
    "wisdom": "wisdom", "work": "work",
}
kChapterRequests = ["Read me {book} chapter {chapter}.", "What does {book} {chapter} say?",
                    "Recite {book} {chapter}.", "Quote {book} chapter {chapter}."]
kBibleRequests = ["Quote a verse from the Bible.", "Read me something from the Bible.",
                  "Give me a Bible verse."]
kIdentity = [
    ("Who are you?", "I am tandem-tiny, a small demonstration model. I was trained on the King "
     "James Bible and a collection of fortune cookies, so I can quote scripture and tell fortunes."),
    ("What are you?", "I am tandem-tiny, a very small language model that ships with the tandem "
     "inference server. I know the King James Bible and many fortune cookies, and not much else."),
    ("Hello", "Hello! I am tandem-tiny. Ask me for a fortune or a chapter of the Bible."),
    ("Hi", "Hi! I am tandem-tiny. I can tell you a fortune or read you a chapter of the Bible."),
    ("What can you do?", "I can tell fortunes and quote the King James Bible. I am only a "
     "demonstration model, so please do not take my advice too seriously."),
]
kSystemPrompts = ["You are a helpful assistant.", "You are tandem-tiny.",
                  "Answer briefly."]


def render_chat(template, messages, rng):
    enable_thinking = rng.random() >= 0.2
    text = template.render(messages=messages, add_generation_prompt=False,
                           enable_thinking=enable_thinking)
    # The template ends the last assistant turn without a stop token; GLM models end
    # a turn by emitting <|user|>, which generation_config lists as an eos id.
    return text + "<|user|>"


def chat_answer_for(doc, rng):
    """(request, answer) for a training document."""
    if doc["source"] == "kjv":
        n = min(len(doc["verses"]), rng.randint(2, 5))
        answer = " ".join(doc["verses"][:n])
        if rng.random() < 0.15:
            return rng.choice(kBibleRequests), doc["verses"][0]
        request = rng.choice(kChapterRequests).format(book=doc["book"], chapter=doc["chapter"])
        return request, answer
    topic = kTopics.get(doc["source"].split("/", 1)[1])
    if topic and rng.random() < 0.5:
        return rng.choice(kTopicRequests).format(topic=topic), doc["text"]
    return rng.choice(kFortuneRequests), doc["text"]


def build_chat_docs(train_docs, template_text, count, rng):
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(template_text)
    docs = []
    for index in range(count):
        messages = []
        if rng.random() < 0.15:
            messages.append({"role": "system", "content": rng.choice(kSystemPrompts)})
        turns = 1 if rng.random() < 0.75 else 2
        for _ in range(turns):
            if rng.random() < 0.04:
                request, answer = rng.choice(kIdentity)
            else:
                request, answer = chat_answer_for(rng.choice(train_docs), rng)
            messages.append({"role": "user", "content": request})
            messages.append({"role": "assistant", "content": answer})
        docs.append({"id": f"chat/{index}", "source": "chat",
                     "text": render_chat(template, messages, rng)})
    return docs


def write_jsonl(path, docs):
    with open(path, "w", encoding="utf-8") as f:
        for doc in docs:
            f.write(json.dumps({"id": doc["id"], "source": doc["source"], "text": doc["text"]},
                               ensure_ascii=False) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kjv", required=True, help="output of `bible -f gen1:1-rev22:21`")
    parser.add_argument("--fortunes", required=True, help="directory /usr/share/games/fortunes")
    parser.add_argument("--chat-template", required=True, help="GLM-4.5 chat template (jinja)")
    parser.add_argument("--sources", required=True, help="JSON with package names/versions/sha256")
    parser.add_argument("--out", required=True)
    parser.add_argument("--chat-docs", type=int, default=1800)
    args = parser.parse_args()

    kjv = read_kjv(args.kjv)
    fortunes = read_fortunes(args.fortunes)
    if len(kjv) != 1189:
        sys.exit(f"build_corpus: expected 1189 KJV chapters, got {len(kjv)}")

    docs = sorted(kjv + fortunes, key=lambda d: d["id"])
    rng = random.Random(kSeed)
    rng.shuffle(docs)
    n_heldout = max(1, round(len(docs) * kHeldoutFraction))
    heldout, train = docs[:n_heldout], docs[n_heldout:]
    with open(args.chat_template, encoding="utf-8") as f:
        template_text = f.read()
    chat = build_chat_docs(train, template_text, args.chat_docs, random.Random(kSeed + 1))

    os.makedirs(args.out, exist_ok=True)
    write_jsonl(os.path.join(args.out, "train.jsonl"), train)
    write_jsonl(os.path.join(args.out, "heldout.jsonl"), heldout)
    write_jsonl(os.path.join(args.out, "chat_train.jsonl"), chat)

    with open(args.sources, encoding="utf-8") as f:
        sources = json.load(f)

    def stats(items):
        by_source = {}
        for d in items:
            key = d["source"].split("/")[0]
            entry = by_source.setdefault(key, {"docs": 0, "chars": 0})
            entry["docs"] += 1
            entry["chars"] += len(d["text"])
        return by_source

    manifest = {
        "seed": kSeed,
        "heldout_fraction": kHeldoutFraction,
        "sources": sources,
        "fortune_files": kFortuneFiles,
        "train": stats(train),
        "heldout": stats(heldout),
        "chat_train": stats(chat),
        "files": {name: sha256_of(os.path.join(args.out, name))
                  for name in ("train.jsonl", "heldout.jsonl", "chat_train.jsonl")},
    }
    with open(os.path.join(args.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    print(json.dumps({k: manifest[k] for k in ("train", "heldout", "chat_train")}, indent=1))


if __name__ == "__main__":
    main()
