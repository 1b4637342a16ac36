"""In-process tests: no site, worker, simulator or server is started (one-shot commands
such as ffmpeg, ffprobe or `manage.py check` are fine). `pytest tests/unit` is quick."""
