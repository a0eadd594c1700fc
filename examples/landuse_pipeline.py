"""A land-use image pipeline (Parsl's image-processing example, in miniature).

Three stages, wired only by files:

1. ``make_image`` (bash, one per image) writes a synthetic land-use "image":
   a plain PGM (P2) grid whose pixel values are land-use class codes 0-5,
   drawn by awk from a Park-Miller generator seeded per image;
2. ``colorize`` (python, one per image) reads that image through the
   DataFuture in ``inputs=`` and writes a colored plain PPM (P3), mapping
   each class code to an RGB triple;
3. ``analyze`` (python, one for all) reads every colored image, maps the
   colors back to classes and counts the pixels of each land-use class.

    python examples/landuse_pipeline.py [WORKDIR]
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile

from daskflow import File, bash_app, python_app

# class code -> (name, RGB)
CLASSES = {
    0: ("water", (0, 0, 255)),
    1: ("forest", (34, 139, 34)),
    2: ("grassland", (124, 252, 0)),
    3: ("cropland", (255, 215, 0)),
    4: ("urban", (128, 128, 128)),
    5: ("barren", (210, 180, 140)),
}
MODULUS = 2147483647  # Park-Miller "minimal standard" generator: x <- 16807 x mod (2^31 - 1)
MULTIPLIER = 16807


def image_seed(i: int) -> int:
    """The generator's seed for image ``i`` (never 0, or the generator sticks at 0)."""
    return 1 + 7919 * (i + 1)


@bash_app
def make_image(i, width, height, outputs=()):
    """Write image ``i`` as a plain PGM of class codes to outputs[0]."""
    return (
        f"awk -v x={image_seed(i)} -v w={width} -v h={height} -v k={len(CLASSES)} "
        f"'BEGIN {{ print \"P2\"; print w, h; print k - 1;"
        f" for (r = 0; r < h; r++) {{ line = \"\";"
        f"  for (c = 0; c < w; c++) {{ x = (x * {MULTIPLIER}) % {MODULUS};"
        f"   line = line (c ? \" \" : \"\") (x % k) }}"
        f"  print line }} }}' > {shlex.quote(outputs[0].filepath)}"
    )


def read_netpbm(path: str):
    """(magic, width, height, maxval, values) of a plain PGM/PPM file."""
    with open(path) as fh:
        tokens = fh.read().split()
    magic, width, height, maxval = tokens[0], int(tokens[1]), int(tokens[2]), int(tokens[3])
    return magic, width, height, maxval, [int(t) for t in tokens[4:]]


@python_app
def colorize(inputs=(), outputs=()):
    """Map the class codes of the PGM in inputs[0] to RGB; write a PPM to outputs[0]."""
    magic, width, height, _, codes = read_netpbm(inputs[0].filepath)
    if magic != "P2" or len(codes) != width * height:
        raise ValueError(f"{inputs[0].filepath} is not a {width}x{height} plain PGM")
    with open(outputs[0].filepath, "w") as out:
        out.write(f"P3\n{width} {height}\n255\n")
        for r in range(height):
            row = codes[r * width:(r + 1) * width]
            out.write(" ".join("%d %d %d" % CLASSES[c][1] for c in row) + "\n")
    return outputs[0].filepath


@python_app
def analyze(inputs=()):
    """Pixels per land-use class (by name) over all the colored images in inputs."""
    by_color = {rgb: name for name, rgb in CLASSES.values()}
    counts = {name: 0 for name, _ in CLASSES.values()}
    for f in inputs:
        magic, width, height, _, values = read_netpbm(f.filepath)
        if magic != "P3" or len(values) != 3 * width * height:
            raise ValueError(f"{f.filepath} is not a {width}x{height} plain PPM")
        for j in range(0, len(values), 3):
            counts[by_color[tuple(values[j:j + 3])]] += 1
    return counts


def main(workdir, n_images: int = 6, width: int = 32, height: int = 24) -> dict:
    """Make, colorize and analyze ``n_images`` images; return pixels per class."""
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    colored = []
    for i in range(n_images):
        image = make_image(i, width, height,
                           outputs=[File(os.path.join(workdir, f"landuse_{i:03d}.pgm"))])
        color = colorize(inputs=[image.outputs[0]],
                         outputs=[File(os.path.join(workdir, f"landuse_{i:03d}_color.ppm"))])
        colored.append(color.outputs[0])
    return analyze(inputs=colored).result()


if __name__ == "__main__":
    workdir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="landuse-")
    counts = main(workdir)
    total = sum(counts.values())
    print(f"images and their colored versions are in {workdir}")
    for name, count in counts.items():
        print(f"{name:>10}: {count:6d} pixels ({100 * count / total:5.1f} %)")
