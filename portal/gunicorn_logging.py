"""gunicorn's logger with the portal's redaction on its access and error lines."""

from gunicorn.glogging import Logger

from .redaction import redact_text


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f"):  # request line, path, referer
            if isinstance(atoms.get(key), str):
                atoms[key] = redact_text(atoms[key])
        if atoms.get("q"):
            atoms["q"] = redact_text("?" + atoms["q"])[1:]
        return atoms

    def error(self, msg, *args, **kwargs):
        super().error(redact_text(str(msg)), *args, **kwargs)

    def warning(self, msg, *args, **kwargs):
        super().warning(redact_text(str(msg)), *args, **kwargs)
