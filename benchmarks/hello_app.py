"""A Flask hello-world, served by the same gunicorn settings as the service (the serving
benchmark's reference point)."""

from flask import Flask, jsonify


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/hello")
    def hello():
        return jsonify({"hello": "world"})

    return app
