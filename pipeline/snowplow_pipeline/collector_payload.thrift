# The raw event record that the collector writes and enrich reads: one HTTP request.
# Field ids and types follow upstream's CollectorPayload 1-0-0 so that upstream enrich can
# read what our collector writes, and our enrich can read what upstream's collector writes.
struct CollectorPayload {
  31337: string schema
  100: string ipAddress
  200: i64 timestamp
  210: string encoding
  220: string collector
  300: optional string userAgent
  310: optional string refererUri
  320: optional string path
  330: optional string querystring
  340: optional string body
  350: optional list<string> headers
  360: optional string contentType
  400: optional string hostname
  410: optional string networkUserId
}
