"""The media type a file's name says, by the router's own table: the same on every host.

Python's `mimetypes` reads the host's database (/etc/mime.types, the Windows registry) over its
own: a slim container image has none (a WebP is no type), and a full one says what its
packages say (`.ts` a Qt translation, `.rs` an XML, `.go` nothing), so what an upstream got
hung on where the router ran. The table holds the files upstreams take (OpenAI's images to
edit, audio to transcribe, documents; Claude's, Gemini's and Bedrock's documents and media),
each as those upstreams name it; source and plain-text formats of no type they take are
`text/plain` (text every one reads).
"""

from __future__ import annotations

__all__ = ["guess_media_type", "media_type_of", "sniffed"]

_TEXT = "text/plain"
_OFFICE = "application/vnd.openxmlformats-officedocument"

# Extension (lower case) → media type.
_BY_EXTENSION = {
    # images
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".avif": "image/avif",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".svg": "image/svg+xml",
    # documents
    ".pdf": "application/pdf",
    ".txt": _TEXT,
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".json": "application/json",
    ".xml": "application/xml",
    ".rtf": "application/rtf",
    ".doc": "application/msword",
    ".docx": f"{_OFFICE}.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": f"{_OFFICE}.spreadsheetml.sheet",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": f"{_OFFICE}.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".epub": "application/epub+zip",
    # audio
    ".mp3": "audio/mpeg",
    ".mpga": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".aac": "audio/aac",
    ".aif": "audio/aiff",
    ".aiff": "audio/aiff",
    # video
    ".mp4": "video/mp4",
    ".mpeg": "video/mpeg",
    ".mpg": "video/mpeg",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
    ".wmv": "video/x-ms-wmv",
    ".flv": "video/x-flv",
    ".3gp": "video/3gpp",
    # source code with a type upstreams take
    ".py": "text/x-python",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".ts": "text/x-typescript",
} | dict.fromkeys(
    (
        *(".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".java", ".kt", ".scala", ".swift"),
        *(".go", ".rs", ".rb", ".php", ".sh", ".sql", ".tex", ".log", ".jsonl"),
        *(".yaml", ".yml", ".toml", ".ini"),
    ),
    _TEXT,
)


def media_type_of(name: str) -> str | None:
    """The media type a file's name (or URL: its query left out) says; None: unknown."""
    path = name.split("?", 1)[0].split("#", 1)[0]
    base = path[path.rfind("/") + 1 :]
    dot = base.rfind(".")
    return _BY_EXTENSION.get(base[dot:].lower()) if dot >= 0 else None


def guess_media_type(url: str) -> str:
    """An image link's media type: its name's, else JPEG."""
    return media_type_of(url) or "image/jpeg"


# (offset, leading bytes) → (media type, extension): what a file holds, for one named nothing.
_SIGNATURES: tuple[tuple[int, bytes, str, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (0, b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (0, b"GIF8", "image/gif", ".gif"),
    (8, b"WEBP", "image/webp", ".webp"),
    (8, b"WAVE", "audio/wav", ".wav"),
    (0, b"ID3", "audio/mpeg", ".mp3"),
    (0, b"\xff\xfb", "audio/mpeg", ".mp3"),
    (0, b"\xff\xf3", "audio/mpeg", ".mp3"),
    (0, b"\xff\xf2", "audio/mpeg", ".mp3"),
    (0, b"fLaC", "audio/flac", ".flac"),
    (0, b"OggS", "audio/ogg", ".ogg"),
    (4, b"ftypM4A", "audio/mp4", ".m4a"),
    (4, b"ftyp", "video/mp4", ".mp4"),
    (0, b"\x1aE\xdf\xa3", "video/webm", ".webm"),
    (0, b"%PDF-", "application/pdf", ".pdf"),
)


def sniffed(data: bytes) -> tuple[str, str] | None:
    """(media type, extension) of what `data` holds, by its leading bytes; None: unknown."""
    for offset, lead, media_type, extension in _SIGNATURES:
        if data.startswith(lead, offset):
            return media_type, extension
    return None
