# Stand-in for ascendai/cann:<tag> built by dev/standin/build.sh; its header lists every way it
# differs from the real image. Context: a temporary directory with python3.10/, fakes.py, fake_cann.py, locks/.
ARG UBUNTU_IMAGE=kit-standin/ubuntu:22.04
FROM ${UBUNTU_IMAGE}
ARG CANN_VERSION=8.0.RC3
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Python where the real image has it, on PATH the same way.
COPY python3.10 /usr/local/python3.10
ENV PATH=/usr/local/python3.10/bin:${PATH} \
    LD_LIBRARY_PATH=/usr/local/Ascend/driver/lib64/common:/usr/local/Ascend/driver/lib64/driver
RUN echo /usr/local/python3.10/lib > /etc/ld.so.conf.d/python3.10.conf \
 && ldconfig \
 && for script in /usr/local/python3.10/bin/*; do \
      if [ -f "$script" ] && head -c 2 "$script" | grep -q '#!'; then \
        sed -i '1s|^#!.*/python3\.10$|#!/usr/local/python3.10/bin/python3.10|' "$script"; \
      fi; \
    done \
 && python3 -c "import ssl, sqlite3, ctypes, lzma, bz2; print('python ok')" \
 && python3 -m pip --version

# The fake CANN toolkit (tests/fakes layout) and its set_env.sh.
COPY fakes.py fake_cann.py /tmp/standin/
RUN cd /tmp/standin && python3 fake_cann.py "${CANN_VERSION}" && rm -rf /tmp/standin \
 && echo "source /usr/local/Ascend/ascend-toolkit/set_env.sh" >> /etc/profile

# Substitute no-deps lock, if build.sh wrote one (the kit build picks it by NODEPS_LOCK_SUFFIX).
COPY locks/ /opt/kit/docker/locks/

# The real image's entry point: source CANN, then run the command.
ENTRYPOINT ["/bin/bash", "-c", "source /usr/local/Ascend/ascend-toolkit/set_env.sh && exec \"$@\"", "--"]
CMD ["bash"]
