// Node's "url" for a library the loader pulls in (a WHATWG URL parser): only the two
// functions it calls, from the browser's own URL.
function domainToASCII(domain) {
  try {
    return new URL(`http://${domain}`).hostname;
  } catch {
    return "";
  }
}
module.exports = { domainToASCII, domainToUnicode: (domain) => domain, URL, URLSearchParams };
