/*
 * cfgauth: the credentials and TLS settings of both sides, checked by
 * their flags in the schema: the password given one way at most and read
 * from its file or credential, TLS settings only with tls = true, the CA
 * store defaulted, the TLS files readable, and warnings for secrets others
 * may read and for verification turned off.
 */
#ifndef BRIDGE_CFGAUTH_H
#define BRIDGE_CFGAUTH_H

#include "cfgload.h"

/* Refuses (and marks refused) each TLS setting of a group whose tls is false. */
void cfgauth_tls_only(struct loader *ld);

/* Reads the password files and credentials and checks the TLS files, for each side. */
void cfgauth_load(struct loader *ld);

#endif
