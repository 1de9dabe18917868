// In tests, response bodies are asserted on field by field: read them as `any` rather than
// casting at every call.
export {};
declare global {
  interface Response {
    json(): Promise<any>;
  }
}
