// Node's "events" for a library the loader pulls in (an XML writer it never runs here).
class EventEmitter {
  constructor() {
    this.listeners = {};
  }
  on(name, listener) {
    (this.listeners[name] ??= []).push(listener);
    return this;
  }
  emit(name, ...values) {
    for (const listener of this.listeners[name] ?? []) listener(...values);
    return Boolean(this.listeners[name]);
  }
}
module.exports = { EventEmitter };
