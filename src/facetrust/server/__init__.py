"""The HTTP service: app factory, Rekognition JSON protocol, SigV4 auth and roles."""
