// Creates Kafka topics that do not exist yet, all in one Admin request (one JVM start instead of
// one TopicCommand JVM per topic: each start costs seconds on a small box). Run by tools/stack
// with Java's source-file launcher on the stack's classpath:
//   java -cp "$KURT_STATE_DIR/kafka/libs/*" CreateTopics.java BOOTSTRAP PARTITIONS TOPIC...
// Like TopicCommand --create --if-not-exists: an existing topic is left as it is. A new one gets
// the broker's default.replication.factor (and its min.insync.replicas): 1 on the default stack, 3
// (and 2) on the --ha stack.
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.errors.TopicExistsException;

public class CreateTopics {
  public static void main(String[] args) throws Exception {
    if (args.length < 3) {
      System.err.println("usage: CreateTopics BOOTSTRAP PARTITIONS TOPIC...");
      System.exit(2);
    }
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");
    int partitions = Integer.parseInt(args[1]);
    List<NewTopic> topics = new ArrayList<>();
    for (int i = 2; i < args.length; i++) topics.add(new NewTopic(args[i], Optional.of(partitions), Optional.empty()));
    int failed = 0;
    try (Admin admin = Admin.create(props)) {
      for (Map.Entry<String, KafkaFuture<Void>> e : admin.createTopics(topics).values().entrySet()) {
        try {
          e.getValue().get();
          System.out.println("Created topic " + e.getKey() + ".");
        } catch (ExecutionException x) {
          if (x.getCause() instanceof TopicExistsException) continue;
          System.err.println("Creating topic " + e.getKey() + " failed: " + x.getCause());
          failed++;
        }
      }
    }
    System.exit(failed == 0 ? 0 : 1);
  }
}
