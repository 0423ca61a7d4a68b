/* prebuilds: keeps the prebuilds user a member of every organization that has
 * prebuilds configured, and of that organization's prebuilds group.
 * This umbrella header is the whole public API. */
#ifndef PREBUILDS_PREBUILDS_H
#define PREBUILDS_PREBUILDS_H

#define PB_VERSION "0.1.0"

#include "admin.h"
#include "error.h"
#include "model.h"
#include "parse.h"
#include "plan.h"
#include "reconcile.h"
#include "schema.h"
#include "session.h"
#include "store.h"

#endif
