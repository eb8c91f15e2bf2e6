package dev.prismaoutbox.connect;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.ConnectRecord;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.transforms.Transformation;

/**
 * Copies the outbox row's `headers` JSON object into Kafka headers, as the prisma-outbox relay
 * does: string values as they are, other values as JSON text, nulls dropped, and `id`,
 * `eventType`, `aggregateType` left to the EventRouter (a row never spoofs them). Runs BEFORE
 * Debezium's EventRouter, on the change event's `after` struct; the router keeps these headers.
 */
public class HeadersFromJson<R extends ConnectRecord<R>> implements Transformation<R> {
  public static final String FIELD_CONFIG = "field";
  private static final Set<String> RESERVED = Set.of("id", "eventType", "aggregateType");
  private static final ObjectMapper MAPPER = new ObjectMapper();
  private String field = "headers";

  @Override
  public void configure(Map<String, ?> configs) {
    Object value = configs.get(FIELD_CONFIG);
    if (value != null) field = value.toString();
  }

  @Override
  public R apply(R record) {
    if (!(record.value() instanceof Struct)) return record;
    Struct envelope = (Struct) record.value();
    if (envelope.schema().field("after") == null) return record;
    Struct after = envelope.getStruct("after");
    if (after == null) return record;
    Field column = after.schema().field(field);
    if (column == null) return record;
    Object json = after.get(column);
    if (json == null) return record;
    JsonNode root;
    try {
      root = MAPPER.readTree(json.toString());
    } catch (Exception e) {
      throw new DataException("column " + field + " does not hold JSON: " + e.getMessage(), e);
    }
    if (!root.isObject()) throw new DataException("column " + field + " must hold a JSON object, got " + root.getNodeType());
    for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> entry = it.next();
      JsonNode node = entry.getValue();
      if (node.isNull() || RESERVED.contains(entry.getKey())) continue;
      record.headers().addString(entry.getKey(), node.isTextual() ? node.textValue() : node.toString());
    }
    return record;
  }

  @Override
  public ConfigDef config() {
    return new ConfigDef().define(FIELD_CONFIG, ConfigDef.Type.STRING, "headers", ConfigDef.Importance.MEDIUM,
        "The column of the outbox table holding a JSON object of extra headers.");
  }

  @Override
  public void close() {}
}
