"""`semia edit`: a local web editor to paint a new layout over a photo (or a mask of what to
remove, or a sketch of the new layout) and see the result.

    server.py    the HTTP server and its JSON/HTTP API (documented there), `Editor` state
    config.py    `EditorConfig`: the settings, their defaults and help
    state.py     the per-browser sessions
    uploads.py   uploads decoded by semia.io's readers with size limits; PNG encoding
    training.py  "Train GAN": SemIA training in a background process, models cached per photo
    static/      the page: index.html, editor.js, editor.css (plain JavaScript, no build step)

Start it with `semia edit` (needs the `editor` extra: fastapi, uvicorn, python-multipart).
"""
