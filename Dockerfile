# jobcompd in a container (docs/install.md, "With Docker").
#
# Layout, the same as a host installation:
#   /usr/lib/jobcompd/{bin,dist,node_modules,package.json}   the daemon (/usr/bin/jobcompd links to it)
#   /usr/libexec/jobcompd/jobcompd-hook                      the native hook (static-pie), to copy to the slurmctld host
#   (all of these installed by `make install`)
#   /etc/jobcompd/{jobcompd.conf,rdkafka.conf,hook.conf}     the examples from config/: mount your own
#   /var/lib/jobcompd   state file          (volume)
#   /var/spool/jobcompd hook spool          (volume: bind-mount the host's, shared with the hook)
#   /run/jobcompd       hook socket         (volume: bind-mount the host's, shared with the hook)

# ---- build: exactly what `make build` does in CI, then `make install` into /out -----------
FROM node:24-bookworm-slim AS build
WORKDIR /src
# g++ make python3 libsystemd-dev and librdkafka's libraries (make itself is among them, so
# the script runs before make). The image's Node.js 24 (with include/node under /usr/local)
# is the one scripts/node.sh picks.
COPY scripts/ scripts/
RUN scripts/system-deps.sh build && rm -rf /var/lib/apt/lists/*
# The npm CI uses (the image has npm 10): npm 11 honours package.json's allowScripts, so only
# the listed packages run install scripts, as in CI.
ARG NPM_VERSION=11.19.1
RUN npm install -g "npm@${NPM_VERSION}" --no-audit --no-fund
# npm packages, native modules built from source against this Node's headers: the Makefile
# sets npm_config_nodedir to /usr/local (from process.execPath), whose include/node the
# official images ship. Its own layer, rebuilt only when these files change. native/hook-socket
# is one of the packages (package.json: "file:native/hook-socket", built by npm install); a
# build/ of it from the build context (.dockerignore does not leave it out) is removed, so
# that the addon is always this image's. make deps then patches node-rdkafka
# (native/node-rdkafka/apply.sh: delivery reports in batches) and rebuilds its addon.
COPY Makefile package.json package-lock.json ./
COPY native/hook-socket/ native/hook-socket/
COPY native/node-rdkafka/ native/node-rdkafka/
RUN rm -rf native/hook-socket/build && make deps
# The sources `make build` compiles (tsconfig.build.json: src, tools, bench; the hook), and
# nothing else: not `COPY . .`, which would put a native/hook-socket/build/ from the context
# over the one just built.
COPY tsconfig.json tsconfig.build.json ./
COPY bin/ bin/
COPY src/ src/
COPY tools/ tools/
COPY bench/ bench/
COPY native/Makefile native/jobcompd-hook.c native/
# TypeScript -> dist/, the native hook -> native/build/jobcompd-hook; then the layout above
# under /out (docs/install.md): the runtime node_modules only (no dev dependencies, not
# librdkafka's source tree and objects, about 470 MB: node-rdkafka loads
# node_modules/node-rdkafka/build/deps/librdkafka.so.1), hook-socket as a directory,
# /usr/bin/jobcompd. No configuration (below).
RUN make build && make install DESTDIR=/out

# ---- runtime ---------------------------------------------------------------------------
# Plain Debian: make install put the build's Node.js in /usr/lib/jobcompd/node.
FROM debian:bookworm-slim
# Runtime libraries of Node.js (libstdc++6) and of librdkafka as scripts/system-deps.sh built
# it: libssl3 (TLS, SCRAM), zlib1g, libzstd1, libsasl2-2 and libsasl2-modules-gssapi-mit
# (Kerberos), libcurl4 (OAUTHBEARER OIDC); libsystemd0 (sd-notify); ca-certificates (to
# verify brokers' certificates). tini: PID 1 (see ENTRYPOINT).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libstdc++6 libssl3 zlib1g libzstd1 libsasl2-2 \
      libsasl2-modules-gssapi-mit libcurl4 libsystemd0 ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*

# The daemon runs as slurm. When the hook socket and the spool are shared with the host
# (bind mounts of /run/jobcompd and /var/spool/jobcompd), these ids MUST be those of the
# host's SlurmUser: the hook, run by slurmctld as SlurmUser, connects to the socket (0660)
# and writes into the spool (0700). 64030 is what Debian's slurm-wlm packages give the slurm
# user (unless one existed before): check with `id slurm` on the host.
ARG SLURM_UID=64030
ARG SLURM_GID=64030
RUN groupadd --system --gid "${SLURM_GID}" slurm \
 && useradd --system --uid "${SLURM_UID}" --gid slurm --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin slurm \
 && install -d -o slurm -g slurm -m 0700 /var/lib/jobcompd /var/spool/jobcompd \
 && install -d -o slurm -g slurm -m 0755 /run/jobcompd

COPY --from=build /out/ /
COPY config/jobcompd.conf config/rdkafka.conf config/hook.conf /etc/jobcompd/

VOLUME ["/var/lib/jobcompd", "/var/spool/jobcompd", "/run/jobcompd"]
# 9200: the jobcomp/elasticsearch endpoint ([http] Listen); 9201: status, metrics, health
# ([admin] Listen). Both listen on 127.0.0.1 by default: use --network host, or set
# Listen = 0.0.0.0:PORT in your jobcompd.conf to publish them. A non-loopback [http] Listen
# is refused at start (exit 78) unless [http] has BasicAuthUser and BasicAuthPassword (Slurm
# sends them from JobCompLoc=http://user:password@host:port/...) or AllowUnauthenticated=yes.
EXPOSE 9200 9201
USER slurm
# SIGTERM stops gracefully (flush for flush_timeout): give it `docker stop -t 45`. A second
# SIGTERM ends jobcompd at once by re-raising the signal with its default action, which the
# kernel ignores for PID 1: tini is PID 1 and forwards signals to jobcompd.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/lib/jobcompd/bin/jobcompd"]
CMD ["run", "-c", "/etc/jobcompd/jobcompd.conf"]
