# atari_vec's OpenEnv-compatible Atari server. Configure it with the environment variables of
# OpenEnv's Atari server (ATARI_GAME, ATARI_OBS_TYPE, ATARI_FULL_ACTION_SPACE, ATARI_MODE,
# ATARI_DIFFICULTY, ATARI_REPEAT_ACTION_PROB, ATARI_FRAMESKIP) and MAX_CONCURRENT_ENVS:
#   docker build -t atari-vec-server .
#   docker run -p 8000:8000 -e ATARI_GAME=breakout atari-vec-server
# Set ATARI_VEC_API_KEY to require a token. Inside the container the server binds every
# interface (ATARI_VEC_HOST below); outside it, the default is 127.0.0.1.
FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ patch zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir ".[server]"
ENV ATARI_GAME=pong \
    ATARI_OBS_TYPE=rgb \
    ATARI_FULL_ACTION_SPACE=false \
    ATARI_REPEAT_ACTION_PROB=0.0 \
    ATARI_FRAMESKIP=4 \
    MAX_CONCURRENT_ENVS=64 \
    ATARI_VEC_HOST=0.0.0.0 \
    ATARI_VEC_PORT=8000
EXPOSE 8000
CMD ["atari-vec-serve"]
