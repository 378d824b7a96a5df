"""Writes small, byte-for-byte reproducible wheels into the directory named by argv[1], so
the pip case installs from a local index (--no-index --find-links) and never the network."""
import base64
import hashlib
import os
import sys
import zipfile

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheel(name, version, requires=()):
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{module}/__init__.py": f'VERSION = "{version}"\n',
        f"{info}/METADATA": meta,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: mkwheels\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{path},{digest(text.encode())},{len(text.encode())}\n" for path, text in files.items()
    )
    files[f"{info}/RECORD"] = record + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(os.path.join(out, f"{module}-{version}-py3-none-any.whl"), "w") as z:
        for path, text in files.items():
            entry = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            z.writestr(entry, text)


wheel("pkg-a", "1.0")
wheel("pkg-a", "2.0")
wheel("pkg-b", "1.0")
wheel("pkg-c", "1.0", requires=["pkg-b"])
