"""Deployment artefacts: Dockerfile, docker-compose.yml, .env.compose, railway.json, boot/docker-run.sh."""
