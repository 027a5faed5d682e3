// The benchmark's reference controller: the smallest controller written the way Go operators
// are (client-go informers, a rate-limited work queue, four workers, expectations for its own
// writes) that makes exactly the operator's three writes per BackgroundTask: the CronJob, the
// CronJobCreated Event and a status merge patch, with the operator's own bodies (taken from a
// task the operator reconciled, whose name the benchmark passes). It validates nothing and
// watches nothing else, so its cost is a floor for any controller making those writes;
// tests/bench/operator-scale.bench.ts times it beside the operator and the direct CronJobs.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

var taskGVR = schema.GroupVersionResource{Group: "workers.personal-assistant.io", Version: "v1alpha1", Resource: "backgroundtasks"}

// forTask is a template's compact JSON with every string value equal to the template task's name
// (the object's name, its labels, the runner's BGTASK_NAME, status.cronJobName) set to name. A
// value follows a colon; a key never does, so a key spelled like the name is left alone.
func (r *reconciler) forTask(template []byte, name string) []byte {
	return bytes.ReplaceAll(template, []byte(`:"`+r.templateName+`"`), []byte(`:"`+name+`"`))
}

type reconciler struct {
	kube     *kubernetes.Clientset
	dyn      *dynamic.DynamicClient
	tasks    cache.Indexer
	cronJobs cache.Indexer
	cronJob  []byte
	status   []byte
	// templateName is the name of the task whose CronJob and status are the templates.
	templateName string
	mu           sync.Mutex
	created      map[string]bool  // CronJobs created whose watch event may not have arrived yet
	statusGen    map[string]int64 // status written for this generation, same reason
}

func (r *reconciler) reconcile(ctx context.Context, key string) error {
	obj, exists, err := r.tasks.GetByKey(key)
	if err != nil || !exists {
		return err
	}
	task := obj.(*unstructured.Unstructured)
	ns, name := task.GetNamespace(), task.GetName()
	_, cronJobExists, err := r.cronJobs.GetByKey(key)
	if err != nil {
		return err
	}
	r.mu.Lock()
	created := cronJobExists || r.created[key]
	r.mu.Unlock()
	if !created {
		var cj batchv1.CronJob
		if err := json.Unmarshal(r.forTask(r.cronJob, name), &cj); err != nil {
			return fmt.Errorf("CronJob template: %w", err)
		}
		cj.Namespace = ns
		cj.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(task, taskGVR.GroupVersion().WithKind("BackgroundTask"))}
		if _, err := r.kube.BatchV1().CronJobs(ns).Create(ctx, &cj, metav1.CreateOptions{FieldManager: "reference-controller"}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		r.mu.Lock()
		r.created[key] = true
		r.mu.Unlock()
		timeZone := "the local time zone"
		if cj.Spec.TimeZone != nil {
			timeZone = *cj.Spec.TimeZone
		}
		event := &eventsv1.Event{
			ObjectMeta:          metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", name, time.Now().UnixNano()), Namespace: ns},
			EventTime:           metav1.NowMicro(),
			Action:              "Apply",
			Reason:              "CronJobCreated",
			Note:                fmt.Sprintf("CronJob %s created: %s (%s)", name, cj.Spec.Schedule, timeZone),
			Type:                corev1.EventTypeNormal,
			ReportingController: "workers.personal-assistant.io/reference-controller",
			ReportingInstance:   "reference-controller",
			Regarding:           corev1.ObjectReference{APIVersion: task.GetAPIVersion(), Kind: task.GetKind(), Name: name, Namespace: ns, UID: task.GetUID(), ResourceVersion: task.GetResourceVersion()},
		}
		if _, err := r.kube.EventsV1().Events(ns).Create(ctx, event, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	generation := task.GetGeneration()
	observed, _, _ := unstructured.NestedInt64(task.Object, "status", "observedGeneration")
	r.mu.Lock()
	written := observed == generation || r.statusGen[key] == generation
	r.mu.Unlock()
	if written {
		return nil
	}
	var status map[string]any
	if err := json.Unmarshal(r.forTask(r.status, name), &status); err != nil {
		return fmt.Errorf("status template: %w", err)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	status["observedGeneration"] = generation
	conditions, _ := status["conditions"].([]any)
	for _, c := range conditions {
		condition := c.(map[string]any)
		condition["observedGeneration"] = generation
		condition["lastTransitionTime"] = now
		if message, ok := condition["message"].(string); ok { // "scheduled by CronJob template"
			condition["message"] = strings.ReplaceAll(message, " "+r.templateName, " "+name)
		}
	}
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	if _, err := r.dyn.Resource(taskGVR).Namespace(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "reference-controller"}, "status"); err != nil {
		return err
	}
	r.mu.Lock()
	r.statusGen[key] = generation
	r.mu.Unlock()
	return nil
}

func main() {
	var o options
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file")
	flag.StringVar(&o.namespace, "namespace", "", "the namespace to watch")
	flag.StringVar(&o.templateName, "template-name", "", "the name of the task the operator reconciled into the templates")
	flag.StringVar(&o.cronJobFile, "cronjob", "", "the operator's CronJob for that task, as JSON")
	flag.StringVar(&o.statusFile, "status", "", "the operator's status of that task, as JSON")
	flag.StringVar(&o.addr, "addr", "", "address answering 200 to any request once the caches are synced")
	flag.IntVar(&o.workers, "workers", 4, "concurrent reconciles, as the operator's default")
	flag.BoolVar(&o.protobuf, "protobuf", false, "protobuf instead of JSON for CronJobs and Events (client-go's default is JSON)")
	flag.Parse()
	if o.templateName == "" {
		fmt.Fprintln(os.Stderr, "reference-controller: --template-name is required")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "reference-controller:", err)
		os.Exit(1)
	}
}

type options struct {
	kubeconfig, namespace, templateName, cronJobFile, statusFile, addr string
	workers                                                            int
	protobuf                                                           bool
}

func run(o options) error {
	cronJob, err := os.ReadFile(o.cronJobFile)
	if err != nil {
		return err
	}
	status, err := os.ReadFile(o.statusFile)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limit: the operator has none either
	if o.protobuf {
		cfg.ContentType = "application/vnd.kubernetes.protobuf"
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	taskInformer := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, o.namespace, nil).ForResource(taskGVR).Informer()
	cronJobInformer := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(o.namespace)).Batch().V1().CronJobs().Informer()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	if _, err := taskInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) }}); err != nil {
		return err
	}
	if _, err := cronJobInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		if owner := metav1.GetControllerOf(obj.(*batchv1.CronJob)); owner != nil {
			queue.Add(obj.(*batchv1.CronJob).Namespace + "/" + owner.Name)
		}
	}}); err != nil {
		return err
	}
	go taskInformer.Run(ctx.Done())
	go cronJobInformer.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), taskInformer.HasSynced, cronJobInformer.HasSynced) {
		return fmt.Errorf("caches never synced")
	}
	r := &reconciler{kube: kube, dyn: dyn, tasks: taskInformer.GetIndexer(), cronJobs: cronJobInformer.GetIndexer(), cronJob: cronJob, status: status, templateName: o.templateName, created: map[string]bool{}, statusGen: map[string]int64{}}
	for range o.workers {
		go func() {
			for {
				key, quit := queue.Get()
				if quit {
					return
				}
				if err := r.reconcile(ctx, key); err != nil {
					fmt.Fprintln(os.Stderr, key, err)
					if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
						os.Exit(2) // a write that can never succeed: the benchmark should stop, not wait
					}
					queue.AddRateLimited(key)
				} else {
					queue.Forget(key)
				}
				queue.Done(key)
			}
		}()
	}
	return http.ListenAndServe(o.addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
}
