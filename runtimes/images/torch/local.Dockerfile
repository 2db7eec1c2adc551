# The PyTorch runtime image as built on our machines (tests/lib/torch_image.sh): the Debian
# bookworm base made by debootstrap + `docker import` (python3, python3-torch, python3-numpy),
# plus the wheels of wheels.txt, the artha_runtime helper, train.py and llama.py. No registry is used.
ARG BASE
FROM ${BASE}
COPY site/ /usr/local/lib/python3.11/dist-packages/
COPY train.py llama.py /opt/artha/
RUN python3 -m compileall -q /usr/local/lib/python3.11/dist-packages/artha_runtime /opt/artha \
 && python3 -c "import torch, numpy, blake3, artha_runtime"
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp
USER 65534:65534
WORKDIR /artha
ENTRYPOINT ["python3", "/opt/artha/train.py"]
