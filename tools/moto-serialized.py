"""moto's DynamoDB server with each request handled under one lock.

moto's in-memory backend is not thread-safe: an atomic `ADD` racing another could lose one,
a false race in the demo's correct endpoints. The services' own races are between their
requests, and stay. Usage: python moto-serialized.py HOST PORT (with moto installed).
"""
import sys, threading
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serialized(environ, start_response):
    with lock:
        return list(app(environ, start_response))


run_simple(sys.argv[1], int(sys.argv[2]), serialized, threaded=True, request_handler=MotoRequestHandler)
