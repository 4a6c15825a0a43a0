"""The addresses a hostile test found the old validator accepting and the mailer unable to use,
shared by the rule's, the CLI's, the web forms' and the config's tests."""

from __future__ import annotations

# (id, the address as typed, a word the refusal's reason contains)
BAD_ADDRESSES = [
    ("nul", "a\x00b@example.org", "U+0000"),
    ("escape", "a\x1bb@example.org", "U+001B"),
    ("delete", "a\x7fb@example.org", "U+007F"),
    ("zero-width-space", "ada\u200b@example.org", "ZERO WIDTH SPACE"),
    ("zero-width-space-domain", "ada@exa\u200bmple.org", "ZERO WIDTH SPACE"),
    ("cyrillic-local", "\u0430da@example.org", "internationalized"),
    ("cyrillic-mixed-domain", "ada@ex\u0430mple.org", "mixes Cyrillic and Latin"),
    ("cyrillic-mixed-punycode", "ada@xn--exmple-4nf.org", "mixes Cyrillic and Latin"),
    ("greek-mixed-domain", "ada@exam\u03c1le.org", "mixes Greek and Latin"),
    ("sql-ish", "a)or(1=1--@example.org", "invalid characters"),
    ("encoded-word", "=?utf-8?q?ada?=@example.org", "encoded word"),
    ("percent-crlf-bcc", "a%0d%0abcc:x@example.org", "invalid characters"),
    ("crlf-bcc", "ada@example.org\r\nbcc:x@example.org", "invalid characters"),
    ("bcc", "bcc:x@example.org", "invalid characters"),
    ("comment", "a(comment)@example.org", "invalid characters"),
    ("display-name", "Ada <ada@example.org>", "display name"),
    ("no-dot", "eve@lab", "period"),
    ("quoted", '"a b"@example.org', "quoting"),
    ("ip-literal", "ada@[127.0.0.1]", "bracketed"),
    ("special-use", "ada@printer.local", "special-use"),
]
