//! Where Lambda sends records and events it hands on: asynchronous
//! invocation destinations, a function's dead-letter queue or topic, and a
//! stream mapping's `on_failure`. One sink for the stack routes a
//! [`Destination`] to its queue, topic or function.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use crate::lambda::{DestinationSink, InvokeRequest, LambdaHost};
use crate::manifest::Destination;
use crate::sns::Sns;
use crate::sqs::message::AttributeValue;
use crate::sqs::{SendRequest, Sqs};

pub struct StackDestinations {
    pub sqs: Arc<Sqs>,
    pub sns: Arc<Sns>,
    pub lambda: Weak<LambdaHost>,
}

impl DestinationSink for StackDestinations {
    fn deliver(
        &self,
        to: &Destination,
        body: String,
        attributes: &[(&str, String)],
    ) -> Result<(), String> {
        match to {
            Destination::Queue(queue) => {
                let attributes: BTreeMap<String, AttributeValue> = attributes
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), AttributeValue::string(v.clone())))
                    .collect();
                self.sqs
                    .send(
                        queue,
                        SendRequest {
                            body,
                            attributes,
                            ..SendRequest::default()
                        },
                    )
                    .map(|_| ())
                    .map_err(|e| e.message)
            }
            Destination::Topic(topic) => self
                .sns
                .publish_internal(topic, body, attributes)
                .map(|_| ())
                .map_err(|e| e.message),
            Destination::Function(function) => {
                let Some(lambda) = self.lambda.upgrade() else {
                    return Err("the stack is stopping".to_owned());
                };
                lambda
                    .invoke_event(
                        function,
                        InvokeRequest {
                            payload: body.into(),
                            ..InvokeRequest::default()
                        },
                    )
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }
}
