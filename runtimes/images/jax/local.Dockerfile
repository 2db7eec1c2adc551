# The JAX runtime image as built on our machines (tests/lib/py_images.sh): the Debian bookworm
# base made by debootstrap + `docker import` (python3), the wheels of wheels.txt installed by
# pip --target on the host (the BASE given here), the artha_runtime helper and train.py. No
# registry is used, and nothing is fetched at run time.
ARG BASE
FROM ${BASE}
COPY site/ /usr/local/lib/python3.11/dist-packages/
COPY train.py /opt/artha/train.py
RUN python3 -m compileall -q /usr/local/lib/python3.11/dist-packages/artha_runtime /opt/artha \
 && python3 -c "import jax, numpy, blake3, artha_runtime"
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp JAX_PLATFORMS=cpu
USER 65534:65534
WORKDIR /artha
ENTRYPOINT ["python3", "/opt/artha/train.py"]
