"""The rmbg browser demo embedded in an existing Gradio app, as one tab among others.

    pip install "rmbg[demo]"
    python examples/gradio_embed.py [--model MODEL] [--port PORT] [--check]

``rmbg.demo.build_app(remover)`` returns the demo as a ``gr.Blocks``; rendering it inside your own
``gr.Blocks`` adds it to your page. One remover (one model) serves every session; the queue that
bounds concurrent requests is your app's, set below. To put it under a path of an existing
FastAPI app instead: ``gr.mount_gradio_app(fastapi_app, build_app(remover), path="/rmbg")``.

``--check`` starts the app on 127.0.0.1, fetches the page once, stops it and exits (what the CI
runs); without it the app serves until Ctrl-C, on localhost only.
"""

from __future__ import annotations

import argparse
import sys
import urllib.request

from rmbg import BackgroundRemover, RmbgError


def build(remover: BackgroundRemover):  # -> gr.Blocks
    import gradio as gr

    from rmbg.demo import build_app

    with gr.Blocks(title="Shop tools") as app:
        gr.Markdown("# Shop tools")
        with gr.Tab("Remove the background"):
            build_app(remover).render()  # the whole demo, inside this tab
        with gr.Tab("Notes"):
            gr.Textbox(label="Anything else your app already does", lines=3)
    # one model, one request at a time, at most 16 waiting: the rest are refused at once
    app.queue(max_size=16, default_concurrency_limit=1)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint folder, .onnx, .xml or Hub id")
    parser.add_argument("--port", type=int, default=None, help="default: Gradio's (7860 up)")
    parser.add_argument("--check", action="store_true", help="start, fetch the page once, stop")
    args = parser.parse_args(argv)
    try:
        remover = BackgroundRemover(args.model)
        app = build(remover)
    except ImportError as exc:
        print(f'error: {exc}. Install the demo extra: pip install "rmbg[demo]"', file=sys.stderr)
        return 2
    except RmbgError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    if not args.check:
        app.launch(server_name="127.0.0.1", server_port=args.port)
        return 0
    app.launch(server_name="127.0.0.1", server_port=args.port, prevent_thread_lock=True)
    try:
        with urllib.request.urlopen(app.local_url, timeout=60) as response:
            page = response.read().decode("utf-8", "replace")
            status = response.status
    finally:
        app.close()
    # the page carries its components' configuration: both the app's and the demo's are there
    missing = [text for text in ("Shop tools", "remove the background") if text not in page]
    if status != 200 or missing:
        print(f"error: {app.local_url} answered {status}, without {missing}", file=sys.stderr)
        return 1
    print(f"served the app with the demo tab at {app.local_url} ({len(page):,} bytes), stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
