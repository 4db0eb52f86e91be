import "./_common.js";
