"""A real filesystem on a loop device, made for one test: a sparse image
file, mkfs, losetup, mount; everything undone on exit."""
import contextlib
import os
import shutil
import subprocess
import tempfile

MKFS = {
    "ext4": ["mkfs.ext4", "-q", "-F"],
    "xfs": ["mkfs.xfs", "-q", "-f"],
    "btrfs": ["mkfs.btrfs", "-q", "-f"],
}


@contextlib.contextmanager
def loop_device(size_mb=64, prefix="psloop-"):
    """A loop device over a sparse file, made for one test and removed after."""
    fd, backing = tempfile.mkstemp(prefix=prefix)
    os.ftruncate(fd, size_mb << 20)
    os.close(fd)
    dev = subprocess.run(["losetup", "--find", "--show", backing], capture_output=True,
                         text=True, check=True).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "--detach", dev], check=False)
        os.unlink(backing)


def have_mkfs(fstype):
    return shutil.which(MKFS[fstype][0]) is not None


def _mount_of(path):
    """(major:minor, fs type) of the mount holding path, from mountinfo."""
    path = os.path.realpath(path)
    best, found = "", (None, None)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            mnt = fields[4].replace("\\040", " ")
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, found = mnt, (fields[2], right.split()[0])
    return found


def fs_type_of(path):
    """The filesystem type name of path's mount."""
    return _mount_of(path)[1]


def sb_dev_of(path):
    """The superblock's device "major:minor" (btrfs files stat() as their subvolume's)."""
    return _mount_of(path)[0]


class LoopFs:
    def __init__(self, workdir, fstype="ext4", size_mb=320):
        self.fstype = fstype
        self.image = os.path.join(workdir, "%s.img" % fstype)
        self.mnt = os.path.join(workdir, "%s-mnt" % fstype)
        self.dev = None
        self.mounted = False
        os.makedirs(self.mnt)
        with open(self.image, "wb") as f:
            f.truncate(size_mb << 20)
        try:
            subprocess.run(MKFS[fstype] + [self.image], check=True, capture_output=True)
            self.dev = subprocess.run(["losetup", "--find", "--show", self.image], check=True,
                                      capture_output=True, text=True).stdout.strip()
            subprocess.run(["mount", "-t", fstype, self.dev, self.mnt], check=True,
                           capture_output=True)
            self.mounted = True
        except Exception:
            self.close()
            raise

    def close(self):
        if self.mounted:
            subprocess.run(["umount", self.mnt], check=False)
            self.mounted = False
        if self.dev:
            subprocess.run(["losetup", "-d", self.dev], check=False)
            self.dev = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
