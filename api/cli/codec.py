"""`remediator codec-server`: the Temporal Web UI's and CLI's window into encrypted histories."""

from __future__ import annotations

import typer

from activities.config import get_settings

app = typer.Typer()


@app.command("codec-server")
def codec_server(
    port: int = typer.Option(8081, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
) -> None:
    """Decode (and encode) payloads for `temporal --codec-endpoint` and the Web UI, with the API's auth.

    Keys come from REMEDIATOR_CODEC_KEYS, else from the key `remediator dev` keeps in the state dir.
    """
    import uvicorn

    from api.codec_server import create_codec_app
    from worker.codec import DEV_KEY_FILE, codec_for, with_dev_key

    settings = get_settings()
    if (settings.state_dir / DEV_KEY_FILE).exists():
        settings = with_dev_key(settings)  # configured keys win; else those of `remediator dev`
    codec = codec_for(settings)
    if codec is None:
        typer.echo("remediator: no codec keys: set REMEDIATOR_CODEC_KEYS (kid=base64key)", err=True)
        raise typer.Exit(2)
    typer.echo(f"codec server on http://{host}:{port} (POST /decode, /encode)")
    uvicorn.run(create_codec_app(settings, codec), host=host, port=port, log_level="warning")
