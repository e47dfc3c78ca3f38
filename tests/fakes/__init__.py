"""Local fake servers that speak the wire formats of services we cannot reach from tests
(OpenAI-compatible chat completions, the Gemini API, a lab's HTTP endpoint). The real client
libraries talk to them over real sockets, from the test process and from Celery workers."""
