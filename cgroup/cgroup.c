// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include "cgroup/cgroup.h"

const char *cg_mode_name(enum cg_mode mode)
{
	switch (mode) {
	case CG_MODE_V1: return "v1";
	case CG_MODE_HYBRID: return "hybrid";
	case CG_MODE_V2: return "v2";
	default: return "none";
	}
}

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static void unescape(char *s)
{
	char *w = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*w++ = *s++;
		}
	}
	*w = '\0';
}

/*
 * A mount of the whole hierarchy: its root shows as "/", or, seen from a
 * private cgroup namespace (a pod on a cgroup v2 node, with the node's
 * /sys/fs/cgroup mounted in), as "/.." repeated up to the namespace's depth.
 */
static bool is_hierarchy_root(const char *root)
{
	if (strcmp(root, "/") == 0)
		return true;
	while (strncmp(root, "/..", 3) == 0)
		root += 3;
	return *root == '\0';
}

int cg_layout_parse(FILE *mountinfo, struct cg_layout *out)
{
	bool v1 = false, v2 = false;
	char *line = NULL;
	size_t cap = 0;

	memset(out, 0, sizeof(*out));
	while (getline(&line, &cap, mountinfo) > 0) {
		char *save = NULL, *tok, *root = NULL, *mnt = NULL, *fstype = NULL;
		int field = 0;
		bool after_sep = false;

		/* id parent maj:min root mountpoint opts [optional...] - fstype src superopts */
		for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
			if (after_sep) {
				fstype = tok;
				break;
			}
			if (field == 3)
				root = tok;
			else if (field == 4)
				mnt = tok;
			else if (field >= 6 && strcmp(tok, "-") == 0)
				after_sep = true;
			field++;
		}
		if (!fstype || !mnt || !root)
			continue;
		if (strcmp(fstype, "cgroup") == 0) {
			v1 = true;
		} else if (strcmp(fstype, "cgroup2") == 0 && !v2 && is_hierarchy_root(root)) {
			/* the first full (not bind-mounted subtree) cgroup2 mount */
			unescape(mnt);
			if (strlen(mnt) >= sizeof(out->v2_mount))
				continue;
			strcpy(out->v2_mount, mnt);
			v2 = true;
		}
	}
	free(line);
	if (ferror(mountinfo))
		return -EIO;
	out->mode = v2 ? (v1 ? CG_MODE_HYBRID : CG_MODE_V2) : (v1 ? CG_MODE_V1 : CG_MODE_NONE);
	return 0;
}

int cg_layout_detect(struct cg_layout *out)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int err;

	if (!f)
		return -errno;
	err = cg_layout_parse(f, out);
	fclose(f);
	return err;
}

int cg_id_from_path(const char *path, uint64_t *id)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh.handle_bytes = sizeof(uint64_t) };
	struct stat st;
	int mnt_id;

	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mnt_id, 0) == 0 &&
	    h.fh.handle_bytes == sizeof(uint64_t)) {
		*id = h.id;
		return 0;
	}
	/* kernfs inode numbers are the node id on 64-bit kernels */
	if (stat(path, &st))
		return -errno;
	*id = st.st_ino;
	return 0;
}

static bool is_cgroup2_dir(const char *path, int *err)
{
	struct statfs sfs;
	struct stat st;

	if (stat(path, &st)) {
		*err = -errno;
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		*err = -ENOTDIR;
		return false;
	}
	if (statfs(path, &sfs)) {
		*err = -errno;
		return false;
	}
	if (sfs.f_type != CGROUP2_SUPER_MAGIC) {
		*err = -EXDEV;
		return false;
	}
	return true;
}

/* Collapse "//", "/./" and a trailing '/': "/a//b/" -> "/a/b". No "..". */
static int normalize(const char *in, char *out, size_t len)
{
	size_t w = 0;
	const char *p = in;

	while (*p) {
		const char *seg;
		size_t n;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		seg = p;
		while (*p && *p != '/')
			p++;
		n = (size_t)(p - seg);
		if (n == 1 && seg[0] == '.')
			continue;
		if (n == 2 && seg[0] == '.' && seg[1] == '.')
			return -EINVAL;
		if (w + 1 + n + 1 > len)
			return -ENAMETOOLONG;
		out[w++] = '/';
		memcpy(out + w, seg, n);
		w += n;
	}
	if (w == 0) {
		if (len < 2)
			return -ENAMETOOLONG;
		out[w++] = '/';
	}
	out[w] = '\0';
	return 0;
}

int cg_resolve(const struct cg_layout *layout, const char *arg, char *abs, size_t abs_len,
	       char *rel, size_t rel_len)
{
	char norm[PATH_MAX], mnt[PATH_MAX];
	size_t mlen;
	int err = 0;

	if (!layout->v2_mount[0])
		return -ENODEV;
	if (!arg || !*arg)
		return -EINVAL;
	err = normalize(arg, norm, sizeof(norm));
	if (err)
		return err;
	err = normalize(layout->v2_mount, mnt, sizeof(mnt));
	if (err)
		return err;
	mlen = strlen(mnt);

	/* A filesystem path under the mount point? */
	if (arg[0] == '/' && strncmp(norm, mnt, mlen) == 0 &&
	    (norm[mlen] == '\0' || norm[mlen] == '/' || mlen == 1)) {
		const char *r = mlen == 1 ? norm : norm + mlen;

		if (snprintf(rel, rel_len, "%s", *r ? r : "/") >= (int)rel_len)
			return -ENAMETOOLONG;
	} else if (snprintf(rel, rel_len, "%s", norm) >= (int)rel_len) {
		return -ENAMETOOLONG;
	}
	if (snprintf(abs, abs_len, "%s%s", mlen == 1 ? "" : mnt,
		     strcmp(rel, "/") == 0 && mlen != 1 ? "" : rel) >= (int)abs_len)
		return -ENAMETOOLONG;
	if (!is_cgroup2_dir(abs, &err))
		return err;
	return 0;
}

int cg_level(const char *rel)
{
	int level = 0;
	const char *p;

	for (p = rel; *p; p++)
		if (*p == '/' && p[1] && p[1] != '/')
			level++;
	return level;
}

int cg_proc_path_parse(FILE *f, const char *hierarchy, char *buf, size_t len)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int err = -ENOENT;

	/* "<hierarchy id>:<controller,list>:<path>" per line */
	while ((n = getline(&line, &cap, f)) > 0) {
		char *c1 = strchr(line, ':'), *c2, *path;
		bool match = false;

		if (!c1 || !(c2 = strchr(c1 + 1, ':')))
			continue;
		*c2 = '\0';
		path = c2 + 1;
		path[strcspn(path, "\n")] = '\0';
		if (!hierarchy) {
			match = c1 == line + 1 && line[0] == '0' && c1[1] == '\0';
		} else {
			char *save = NULL, *tok;

			for (tok = strtok_r(c1 + 1, ",", &save); tok && !match;
			     tok = strtok_r(NULL, ",", &save))
				match = strcmp(tok, hierarchy) == 0;
		}
		if (!match)
			continue;
		err = snprintf(buf, len, "%s", path) >= (int)len ? -ENAMETOOLONG : 0;
		break;
	}
	free(line);
	return err;
}

int cg_pid_path(int pid, const char *hierarchy, char *buf, size_t len)
{
	char p[64];
	FILE *f;
	int err;

	snprintf(p, sizeof(p), "/proc/%d/cgroup", pid);
	f = fopen(p, "re");
	if (!f)
		return -errno;
	err = cg_proc_path_parse(f, hierarchy, buf, len);
	fclose(f);
	return err;
}

int cg_pid_mntns(int pid, uint64_t *ino)
{
	char p[64];
	struct stat st;

	snprintf(p, sizeof(p), "/proc/%d/ns/mnt", pid);
	if (stat(p, &st))
		return -errno;
	*ino = st.st_ino;
	return 0;
}
