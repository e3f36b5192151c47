"""Stand-in for Hugging Face `tokenizers`, used ONLY by smoke_test.sh on machines without it:
one id per byte (0..255), then the added tokens in the order of tokenizer.json's list."""

import json
import re


class Encoding:
    def __init__(self, ids):
        self.ids = ids


class Tokenizer:
    def __init__(self, added):
        self.added = list(added)
        self.ids = {content: 256 + i for i, content in enumerate(self.added)}
        pattern = "|".join(re.escape(t) for t in sorted(self.added, key=len, reverse=True))
        self.splitter = re.compile(f"({pattern})")

    @staticmethod
    def from_file(path):
        with open(path, encoding="utf-8") as f:
            return Tokenizer(json.load(f)["fake_added_tokens"])

    @staticmethod
    def write_fake(path, added):
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"fake_added_tokens": list(added)}, f)

    def encode(self, text):
        ids = []
        for piece in self.splitter.split(text):
            if piece in self.ids:
                ids.append(self.ids[piece])
            else:
                ids.extend(piece.encode("utf-8"))
        return Encoding(ids)

    def encode_batch(self, texts):
        return [self.encode(t) for t in texts]

    def decode(self, ids, skip_special_tokens=True):
        out = bytearray()
        for i in ids:
            if i < 256:
                out.append(i)
            elif not skip_special_tokens:
                out.extend(self.added[i - 256].encode("utf-8"))
        return out.decode("utf-8", errors="replace")

    def token_to_id(self, content):
        return self.ids.get(content)

    def get_vocab_size(self):
        return 256 + len(self.added)
