// Relais console: live updates (server-sent events) and the SMS segment counter. No framework.
"use strict";
