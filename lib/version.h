/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef PS_VERSION_H
#define PS_VERSION_H
#ifndef PODSNOOP_VERSION
#define PODSNOOP_VERSION "0.1.0-dev"
#endif
#endif
